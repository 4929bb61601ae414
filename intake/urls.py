"""Intake (staff) and the resident's public pages."""

from django.urls import include, path

from intake import public_views, views

urlpatterns = [
    path("intake/", views.intake_new, name="intake_new"),
    path("intake/cases/<str:code>/", views.intake_result, name="intake_case"),
    path("intake/regions.json", views.regions_json, name="intake_regions"),
    path("intake/categories.json", views.categories_json, name="intake_categories"),
    path("t/", public_views.lookup, name="tracking_lookup"),
    path("t/<str:token>", public_views.tracking, name="tracking"),
    path("t/<str:token>/rate", public_views.rate, name="tracking_rate"),
    path("t/<str:token>/reopen", public_views.reopen, name="tracking_reopen"),
    path("t/<str:token>/urge", public_views.urge, name="tracking_urge"),
    path("", include("intake.receipt_urls")),
]
