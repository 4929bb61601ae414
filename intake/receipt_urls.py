"""The receipt's URLs, included by ``intake.urls``."""

from django.urls import path

from intake import receipt_views

urlpatterns = [
    path("intake/cases/<str:code>/receipt/", receipt_views.receipt_print, name="receipt_print"),
    path("intake/cases/<str:code>/receipt.pdf", receipt_views.receipt_pdf, name="receipt_pdf"),
]
