from django.apps import AppConfig


class ZongzhiConfig(AppConfig):
    name = "zongzhi"
    verbose_name = "zongzhi"
