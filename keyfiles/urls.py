from django.urls import path

from keyfiles import views

app_name = "keyfiles"

# Mounted under devices/ (kamkeys/urls.py): Download file is a page of My devices.
urlpatterns = [
    path("download/", views.download, name="download"),
]
