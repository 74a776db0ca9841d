import pytest


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_health_check_answers_ok(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_favicon_ico_leads_to_the_icon_every_page_links(client):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].startswith("/static/") and "favicon" in response["Location"]
    assert finders.find("favicon.svg")
