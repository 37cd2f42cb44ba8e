"""django-axes' lockout backend, for logins made over HTTP only.

Axes refuses an `authenticate()` call without a request, because it cannot tell who is
guessing. Every login over HTTP passes one (the admin's login form, DRF); the calls without one
come from code on the server itself (the test client's `login()`, a shell), where there is no
remote guesser to stop: those skip the lockout and go on to the next backend."""

from axes.backends import AxesStandaloneBackend


class LoginLockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
