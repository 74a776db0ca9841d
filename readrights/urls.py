from django.urls import path

from readrights import invitation_views, views

app_name = "readrights"

urlpatterns = [
    path("", views.edit, name="edit"),
    path("assign/", views.assign, name="assign"),
    path("assign/done/", views.assign_done, name="assign_done"),
    path("serial-numbers/", views.serial_list, name="serial_list"),
    path("revoke/", views.revoke, name="revoke"),
    path("users/", views.user_admin, name="user_admin"),
    path("registrations/<int:pk>/end/", views.end_registration, name="end_registration"),
    path("invitations/<int:pk>/resend/", views.resend_invitation, name="resend_invitation"),
    path("invitations/<int:pk>/cancel/", views.cancel_invitation, name="cancel_invitation"),
    path("invitation/accept/", invitation_views.accept, name="accept"),
    path("invitation/<str:token>/", invitation_views.invitation_link, name="invitation"),
]
