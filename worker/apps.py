"""The worker app: at start-up it gives the core (classifier.dispatch) its in-process runners."""

from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "worker"
    verbose_name = "Classification worker"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which Django allows only
        # once every app is loaded, and this module is imported while apps are still loading.
        from classifier import dispatch
        from worker.embedded import runner as embedded_runner
        from worker.inline import InlineRunner

        # Both, whatever ECGSITE_TASK_RUNNER says now: dispatch reads it at each call (tests switch it).
        dispatch.register_local_runner("embedded", embedded_runner)
        dispatch.register_local_runner("inline", InlineRunner())
