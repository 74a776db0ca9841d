from django.urls import path

from devices import action_views, views

app_name = "devices"

urlpatterns = [
    path("", views.device_list, name="list"),
    path("selection/", views.selection_update, name="selection"),
    path("selection/paste/", views.paste_serials, name="paste"),
    path("register/", action_views.register, name="register"),
    path("remove/", action_views.remove, name="remove"),
]
