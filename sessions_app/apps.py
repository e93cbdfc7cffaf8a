from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from sessions_app.origins import SessionOrigin
        from submissions.origins import origin_register

        origin_register(SessionOrigin())
