from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    verbose_name = "ECG classification"

    def ready(self) -> None:
        # Connects the receivers that record sign-ins and API token changes in the audit log.
        from classifier import web_context  # noqa: F401
