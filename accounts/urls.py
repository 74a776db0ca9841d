from django.urls import path
from django.views.generic import RedirectView

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("register/", views.register, name="register"),
    path("register/sent/", views.register_sent, name="register_sent"),
    path("register/activate/<str:token>/", views.activate, name="activate"),
    path("register/complete/", views.complete_registration, name="complete_registration"),
    path("password/check/", views.password_check, name="password_check"),
    path("request-access/", views.request_access, name="request_access"),
    path("language/", views.set_language, name="set_language"),
    # allauth's sign-up URL (linked from its pages and emails) leads to the one way in.
    path("signup/", RedirectView.as_view(pattern_name="accounts:register"), name="signup"),
]
