"""The product's URLs plus the bare view the tracking benchmark compares against."""

from django.http import HttpResponse
from django.urls import path

from zongzhi.urls import urlpatterns as product_urlpatterns


def bare(request):
    """The floor: a Django view through the full middleware stack that does nothing."""
    return HttpResponse("ok")


urlpatterns = [path("bench/bare", bare), *product_urlpatterns]
