"""One error shape for every API error: {"error": {"code", "message", "details"}}.

Set as REST_FRAMEWORK["EXCEPTION_HANDLER"]. Domain errors that reach a view are mapped here, so
views call domain functions without wrapping each call: IllegalTransition -> 409, a model's
ValidationError -> 400 with its fields, ImportFileError -> 400."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from campaigns.models import IllegalTransition
from contacts.importing import ImportFileError

MESSAGES = {
    "invalid": "The request is not valid; see details.",
    "parse_error": "The request body could not be parsed.",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The upload is too large."


class InvalidFile(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_file"
    default_detail = "The file cannot be imported."


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _as_api_exception(exc):
    if isinstance(exc, Http404):
        return exceptions.NotFound(*[a for a in exc.args[:1] if a])
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*[a for a in exc.args[:1] if a])
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    if isinstance(exc, SuspiciousOperation):  # e.g. too many form fields
        return exceptions.ParseError(str(exc) or None)
    if isinstance(exc, IllegalTransition):
        return Conflict(str(exc), code="illegal_transition")
    if isinstance(exc, ImportFileError):
        return InvalidFile(str(exc))
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    return exc


def api_exception_handler(exc, context):
    exc = _as_api_exception(exc)
    exc = _patch_instead_of_put(exc, context)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug, not bad input: Django's 500 (logged)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else None
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        details = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        message = _first_message(details) or MESSAGES["invalid"]
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
        message = str(detail) if detail is not None and not isinstance(detail, dict) else ""
        message = message or MESSAGES.get(code, "") or str(exc)
        details = detail if isinstance(detail, dict) else {}
    response.data = error_body(code, message, details)
    return response


def _patch_instead_of_put(exc, context):
    """A PUT where the resource takes PATCH only: say so, rather than just "not allowed"."""
    view, request = context.get("view"), context.get("request")
    if (
        isinstance(exc, exceptions.MethodNotAllowed)
        and request is not None
        and request.method == "PUT"
        and "PATCH" in getattr(view, "allowed_methods", ())
    ):
        return exceptions.MethodNotAllowed(
            "PUT",
            detail="PUT is not supported here: use PATCH with only the fields to change.",
        )
    return exc


def _first_message(details) -> str:
    """The first error as one readable line: 'phone: This field is required.'"""
    if isinstance(details, dict):
        for field, value in details.items():
            text = _first_message(value)
            if text:
                return text if field == "non_field_errors" else f"{field}: {text}"
    elif isinstance(details, list):
        for value in details:
            text = _first_message(value)
            if text:
                return text
    elif details:
        return str(details)
    return ""


@csrf_exempt  # any method: a POST to nowhere is a 404, not the CSRF page
def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/: the error shape rather than Django's HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


def is_api_path(request) -> bool:
    return request.path_info.startswith("/api/")


def not_found(request, exception=None):
    """handler404: the error shape under /api/, Django's page elsewhere."""
    if is_api_path(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: the error shape under /api/ (the error itself is logged by Django)."""
    if is_api_path(request):
        body = error_body("server_error", "Something went wrong on our side; it has been logged.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
