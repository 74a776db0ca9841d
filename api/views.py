"""The /api/v1/ endpoints. Thin: parse with a serializer, ask api.access / the selectors,
answer. Every error is a problem (api.problems); every key disclosure is audited with its token."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import access, devicesets, disclosures
from api.keys import HEAD_DEVICES, LATER_PARTS, audit_detail, json_stream
from api.models import Scope
from api.problems import Problem
from api.serializers import (
    AssignRequestSerializer,
    AssignResponseSerializer,
    DeviceListQuerySerializer,
    DeviceSerializer,
    DisclosureQuerySerializer,
    DisclosureSerializer,
    KeysRequestSerializer,
    KeysResponseSerializer,
    RevokeRequestSerializer,
    RevokeResponseSerializer,
    device_dicts,
    device_values,
)
from api.throttling import KeysRateThrottle, TokenRateThrottle
from devices.forms import SERIAL_RE
from keyfiles.downloads import FORMAT_CODES
from keyvault.crypto import KeyUnwrapError
from readrights.services import clean_emails, expiry_from_date

PROBLEM = OpenApiResponse(OpenApiTypes.OBJECT, description="application/problem+json (RFC 9457)")
COMMON_ERRORS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 429: PROBLEM}
DAMAGED_CURSOR = "The cursor is damaged; start again without it."


class IdCursorPagination(CursorPagination):
    """Keyset pages in id order: every device that existed when paging began is listed once,
    and devices added meanwhile appear on later pages. A damaged cursor is a 400."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise Problem(400, DAMAGED_CURSOR) from None
        # The position is the last id seen, but a cursor is only base64 of a query string anyone
        # can write: anything but an id made the id comparison raise (a 500).
        position = cursor.position if cursor is not None else None
        if position is not None and not (
            position.isascii() and position.isdigit() and int(position) < 2**63
        ):
            raise Problem(400, DAMAGED_CURSOR)
        return cursor


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 200


def _query(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@extend_schema(
    summary="List the devices you may see",
    parameters=[DeviceListQuerySerializer],
    responses={200: DeviceSerializer(many=True), **COMMON_ERRORS},
)
class DeviceListView(ListAPIView):
    """Devices visible to the token's user, with My devices' searches and changed_since, in
    id order with cursor pages (``next``)."""

    required_scope = Scope.DEVICES_READ
    serializer_class = DeviceSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        params = _query(DeviceListQuerySerializer, self.request)
        scope = access.visible_for_search(self.request.user, params)
        devices = devicesets.by_search(self.request.user, scope, params)
        return device_values(devices)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None
        return self.get_paginated_response(device_dicts(page))


@extend_schema(
    summary="One device you may see",
    responses={200: DeviceSerializer, 404: PROBLEM, **COMMON_ERRORS},
)
class DeviceDetailView(APIView):
    required_scope = Scope.DEVICES_READ

    def get(self, request: Request, serial: str) -> Response:
        if not SERIAL_RE.fullmatch(serial) or not serial.isascii():
            raise Problem(400, "A serial number is 8 digits.", title="Malformed serial number")
        device = (
            access.visible(request.user)
            .filter(serial=serial)
            .select_related("owner")
            .order_by("pk")
            .first()
        )
        if device is None:
            raise exceptions.NotFound("No device with this serial number is visible to you.")
        return Response(DeviceSerializer(device).data)


@extend_schema(
    summary="Fetch keys",
    description=(
        "Keys of up to 100,000 serials, or of a search. `format=json` streams a JSON document: "
        "the devices first, then `count` and the unknown and malformed serials by name "
        "(without saying whether they exist elsewhere); the devices of the first 1,000 serials "
        "leave before the rest are looked up. `zip` and `kem` stream the web download's "
        "encrypted file, protected by `password`. Every disclosure is audited with the token's "
        "id and name (JSON for more than 1,000 serials: one event for the first 1,000, one "
        "each for the next 5,000 and the next 15,000, one for the rest, each written before its "
        "first key)."
    ),
    request=KeysRequestSerializer,
    responses={
        (200, "application/json"): KeysResponseSerializer,
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
        409: PROBLEM,
        **COMMON_ERRORS,
    },
)
class KeysView(APIView):
    required_scope = Scope.KEYS_READ
    throttle_classes = [TokenRateThrottle, KeysRateThrottle]

    def post(self, request: Request) -> StreamingHttpResponse:
        serializer = KeysRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user, token = request.user, request.auth
        fmt = data["format"]
        if "search" in data:
            scope = access.visible_for_search(user, data["search"])
        else:
            scope = access.downloadable(user)
        try:
            if fmt == "json":
                found = devicesets.in_parts(user, scope, data, sizes=(HEAD_DEVICES, *LATER_PARTS))
                chunks = json_stream(
                    token,
                    found.parts,
                    invalid_serials=found.invalid_serials,
                    several=found.several,
                    context=access.audit_context(request._request),
                )
                response = StreamingHttpResponse(chunks, content_type="application/json")
            else:
                device_set = devicesets.resolve(user, scope, data)
                devicesets.release_serials(request.data, data)
                if not data["skip_unknown"]:
                    devicesets.refuse_unknown(device_set)
                ids = device_set.ids
                if not ids:
                    raise Problem(400, "No device to write into a file.", title="Nothing to write")
                assert fmt in FORMAT_CODES
                download = access.download_file(
                    ids,
                    fmt=fmt,
                    password=data["password"],
                    context=access.audit_context(request._request),
                    audit_detail=audit_detail(token),
                )
                response = StreamingHttpResponse(download.chunks, content_type="application/zip")
                response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"password": exc.messages}) from None
        except KeyUnwrapError:
            raise Problem(
                409,
                "The stored keys of some devices failed their integrity check, so nothing was "
                "sent. The failure has been recorded; please contact the manufacturer's support.",
                title="Stored keys failed their integrity check",
            ) from None
        response["Cache-Control"] = "no-store"
        return response


def _read_rights_request(
    request: Request, serializer_class: type[serializers.Serializer]
) -> tuple[dict[str, Any], devicesets.DeviceSet]:
    """The body of an assign or revoke, and the devices it names among those the Super User
    manages (an unknown or foreign serial refuses the whole request)."""
    if not access.is_super_user(request.user):
        raise exceptions.PermissionDenied(
            "Only Super Users of the owning organization manage read rights."
        )
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    device_set = devicesets.resolve(request.user, access.manageable(request.user), data)
    devicesets.refuse_unknown(device_set)
    return data, device_set


@extend_schema(
    summary="Assign read rights",
    description="The same rules, invitations and emails as Assign read rights in the portal.",
    request=AssignRequestSerializer,
    responses={200: AssignResponseSerializer, **COMMON_ERRORS},
)
class AssignReadRightsView(APIView):
    required_scope = Scope.READRIGHTS_WRITE

    def post(self, request: Request) -> Response:
        data, device_set = _read_rights_request(request, AssignRequestSerializer)
        try:
            result = access.assign(
                device_set.devices,
                data["emails"],
                expires_at=expiry_from_date(data.get("expires_on")),
                message=data.get("message", ""),
                context=access.audit_context(request._request),
            )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"emails": exc.messages}) from None
        except access.NotManageable:
            raise exceptions.NotFound("Some devices are not yours to share.") from None
        except access.ReadRightsError as exc:
            raise Problem(400, str(exc)) from None
        return Response(AssignResponseSerializer(result.as_dict()).data)


@extend_schema(
    summary="Revoke read rights",
    description="Ends the customers' rights on these devices at once; each customer is told.",
    request=RevokeRequestSerializer,
    responses={200: RevokeResponseSerializer, **COMMON_ERRORS},
)
class RevokeReadRightsView(APIView):
    required_scope = Scope.READRIGHTS_WRITE

    def post(self, request: Request) -> Response:
        data, device_set = _read_rights_request(request, RevokeRequestSerializer)
        try:
            addresses = clean_emails(data["emails"])
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"emails": exc.messages}) from None
        revoked = access.revoke_for_emails(
            addresses, device_set.devices, context=access.audit_context(request._request)
        )
        return Response({"device_count": len(device_set.ids), "revoked": revoked})


@extend_schema(
    summary="Your organization's key disclosures",
    description=(
        "Downloads and exports (channel web, api or command) that included devices of the "
        "organizations you are a Super User of, newest first; each lists only those devices."
    ),
    parameters=[DisclosureQuerySerializer],
    responses={200: DisclosureSerializer(many=True), **COMMON_ERRORS},
)
class DisclosureListView(ListAPIView):
    required_scope = Scope.DEVICES_READ
    serializer_class = DisclosureSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> Any:
        params = _query(DisclosureQuerySerializer, self.request)
        org_ids = access.organization_ids(self.request.user)
        if not org_ids:
            raise exceptions.PermissionDenied(
                "Only Super Users see their organization's key disclosures."
            )
        self._org_ids = org_ids
        return disclosures.disclosures_of(org_ids, params.get("since"))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        assert page is not None
        rows = disclosures.describe(list(page), self._org_ids)
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)
