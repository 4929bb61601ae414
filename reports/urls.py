from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("work/reports/", views.monthly_page, name="monthly"),
    path("work/reports/exports/", views.exports_page, name="exports"),
    path("work/reports/exports/new/<slug:kind>/", views.export_new, name="export_new"),
    path(
        "work/reports/exports/<uuid:public_id>/",
        views.export_download,
        name="export_download",
    ),
]
