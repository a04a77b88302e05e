"""The remote browser's login and logout pages (security.md S4)."""

from django.urls import path

from server import login

urlpatterns = [
    path("login", login.login_page),
    path("logout", login.logout_page),
]
