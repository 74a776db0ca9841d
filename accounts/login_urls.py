"""allauth's login URL, answered by the adapter's LoginView (429 on the failed-login limit).

Included before allauth.urls, without a namespace, so the name stays allauth's "account_login".
"""

from django.urls import path

from accounts.adapter import LoginView

urlpatterns = [path("login/", LoginView.as_view(), name="account_login")]
