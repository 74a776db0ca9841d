"""{% url %} keeps the answers for names without arguments, per URL configuration and prefix."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, clear_script_prefix, set_script_prefix

from kamkeys.template_urls import KeptURLNode


def _render(text: str, **context: object) -> str:
    return Template(text).render(Context(context))


def test_the_builtin_url_tag_is_ours_and_answers_as_reverse_does():
    template = Template("{% url 'devices:list' %}")
    assert isinstance(template.nodelist[0], KeptURLNode)
    assert template.render(Context()) == "/devices/"
    assert _render("{% url name %}", name="devices:paste") == "/devices/selection/paste/"


def test_a_script_prefix_is_part_of_the_answer():
    assert _render("{% url 'devices:list' %}") == "/devices/"
    set_script_prefix("/keys/")
    try:
        assert _render("{% url 'devices:list' %}") == "/keys/devices/"
    finally:
        clear_script_prefix()
    assert _render("{% url 'devices:list' %}") == "/devices/"


def test_another_url_configuration_is_not_answered_from_the_first(settings):
    assert _render("{% url 'home' %}") == "/"
    settings.ROOT_URLCONF = "tests.kamkeys.other_urls"
    assert _render("{% url 'home' %}") == "/elsewhere/"


def test_arguments_as_var_and_unknown_names_behave_as_djangos_tag():
    assert _render("{% url 'devices:list' as there %}[{{ there }}]") == "[/devices/]"
    assert _render("{% url 'no-such-page' as there %}[{{ there }}]") == "[]"
    with pytest.raises(NoReverseMatch):
        _render("{% url 'no-such-page' %}")
    assert (
        _render("{% url 'readrights:end_registration' 7 %}") == "/read-rights/registrations/7/end/"
    )
