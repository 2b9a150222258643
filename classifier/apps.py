from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    verbose_name = "ECG classification"

    def ready(self) -> None:
        from classifier import audit  # noqa: F401  (connects the sign-in signal receivers)
