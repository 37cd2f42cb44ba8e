"""OpenAPI: the error shape, documented on every operation."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, conflict…")
    message = serializers.CharField(help_text="One readable sentence.")
    details = serializers.DictField(
        help_text="For invalid input: field name -> list of messages; else empty."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


ERROR_DESCRIPTIONS = {
    "400": "Bad input (the details name the fields).",
    "401": "Not authenticated.",
    "403": "Permission denied.",
    "404": "Not found.",
    "409": "Illegal state change.",
    "413": "Request body or upload too large.",
}


# What a TimeField writes and reads: "09:00" or "09:00:00". JSON Schema's "time" format wants
# an offset ("09:00:00Z"), which these wall-clock times never have.
TIME_SCHEMA = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "example": "09:00:00",
}


class ApiSchema(AutoSchema):
    """Documents the error shape on every operation: 401 and 403 always, 404 where the path
    names an object or the list is paginated (a page past the end), 400 where a body or filters
    are read, 413 where a body is. Actions document their other codes (409) with extend_schema."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.TimeField):
            return {**{k: v for k, v in schema.items() if k != "format"}, **TIME_SCHEMA}
        return schema

    def _is_list_view(self, serializer=None):
        if getattr(self.view, "list_answers_one_object", False):
            return False
        return super()._is_list_view(serializer)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["401", "403"]
        if "{" in self.path or (self.method == "GET" and self._is_list_view()):
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH") or (
            self.method == "GET" and self._is_list_view()
        ):
            codes.append("400")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("413")  # a body above DATA_UPLOAD_MAX_MEMORY_SIZE
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(ERROR_DESCRIPTIONS[code]), code, direction=direction
                )
        return dict(sorted(responses.items()))
