from django.urls import path

from dispatch import views

app_name = "dispatch"

urlpatterns = [
    path("work/dispatcher/", views.dispatcher_queue, name="dispatcher"),
    path("work/inbox/", views.handler_inbox, name="inbox"),
    path("work/supervise/", views.supervisor_queue, name="supervise"),
    path("work/dashboard/", views.dashboard_page, name="dashboard"),
    path("work/dashboard/cases/", views.dashboard_cases, name="dashboard_cases"),
    path("cases/<str:code>/", views.case_detail, name="case"),
    path(
        "cases/<str:code>/attachments/<int:pk>/",
        views.attachment_download,
        name="attachment",
    ),
    path("cases/<str:code>/<slug:action>/", views.case_action, name="case_action"),
]
