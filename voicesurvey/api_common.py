"""What every API view shares: permissions, pagination, upload checks.

Named in REST_FRAMEWORK settings, so it imports nothing that imports rest_framework.views."""

from django.conf import settings
from rest_framework import exceptions, pagination, permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions, reading included: GET needs `view_<model>`.

    A view may name the permissions of its custom actions in `action_permissions`
    ({"start": ["campaigns.change_campaign"]}); an action not named there falls back to the
    HTTP method's permission on the view's model."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        needed = action_permissions(type(view)).get(getattr(view, "action", None))
        if needed is not None:
            return request.user.has_perms(needed)
        return super().has_permission(request, view)


def action_permissions(view_class) -> dict[str, list[str]]:
    """`action_permissions` of the view class and of its mixins, merged."""
    merged: dict[str, list[str]] = {}
    for klass in reversed(view_class.__mro__):
        merged.update(klass.__dict__.get("action_permissions", {}))
    return merged


class Pagination(pagination.PageNumberPagination):
    """Pages by number: `page` (from 1) and `page_size` (at most max_page_size). Paging
    parameters of other schemes are refused (refuse_foreign_paging), never ignored."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(self, queryset, request, view=None):
        refuse_foreign_paging(request)
        return super().paginate_queryset(queryset, request, view)


# Query parameters other paging schemes use (limit/offset, cursors, per_page): a client that
# sends them believes it pages through a list, and ignoring them would hand it the first page
# as if it were the one asked for.
FOREIGN_PAGING = ("limit", "offset", "per_page", "cursor")


def refuse_foreign_paging(request) -> None:
    """400 naming each paging parameter the API does not support, on every list endpoint."""
    used = [name for name in FOREIGN_PAGING if name in request.query_params]
    if used:
        message = (
            f"Not supported: page with page (1, 2, …) and page_size (at most "
            f"{Pagination.max_page_size})."
        )
        raise exceptions.ValidationError({name: [message] for name in used})


def content_length(request) -> int:
    """The request's declared body length (0 when absent or garbled)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def check_upload_size(request, upload=None) -> None:
    """Refuse an upload above IMPORT_MAX_UPLOAD_BYTES (413): by its Content-Length before the
    body is read, and by the file's size once parsed (a chunked request has no length)."""
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    length = content_length(request)
    if upload is not None:
        length = max(length, upload.size or 0)
    if length > limit:
        from voicesurvey.api_errors import PayloadTooLarge

        raise PayloadTooLarge(f"The upload is larger than the limit of {limit} bytes.")
