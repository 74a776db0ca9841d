"""The API's request and response shapes (they are also its OpenAPI schema)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import CharField, F, Func, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.search import MAX_TERM_LENGTH

FORMATS = ("json", "zip", "kem")
MAX_SERIAL_CHARS = 64  # a longer string is reported cut to this length (it is malformed anyway)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": "^[0-9]{8}$", "example": "63012345"},
        "maxItems": 100_000,
    }
)
class SerialListField(serializers.Field):
    """Up to KAMKEYS_API_MAX_SERIALS strings. Each is checked later, serial by serial, so one
    malformed serial is reported by name instead of failing the list (and 100,000 of them are
    read without a field object each)."""

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list):
            raise serializers.ValidationError("Send the serial numbers as a JSON array of strings.")
        limit = settings.KAMKEYS_API_MAX_SERIALS
        if len(data) > limit:
            raise serializers.ValidationError(
                f"At most {limit:,} serial numbers per request; this one has {len(data):,}."
            )
        if not data:
            raise serializers.ValidationError("Name at least one serial number.")
        # Loops of C, not of Python: 100,000 serials in a few milliseconds.
        if set(map(type, data)) != {str}:
            raise serializers.ValidationError("Every serial number must be a string.")
        try:  # half a character ("\\ud800" in the JSON) can be neither looked up nor reported
            "".join(data).encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError(
                "A serial number contains an unpaired surrogate escape (\\ud800-\\udfff), which "
                "is not a character."
            ) from None
        serials = list(map(str.strip, data))
        if max(map(len, serials)) > MAX_SERIAL_CHARS:
            serials = [serial[:MAX_SERIAL_CHARS] for serial in serials]
        return serials

    def to_representation(self, value: Any) -> Any:
        return value


class SearchSerializer(serializers.Serializer):
    """The column searches of My devices (devices.search), plus changed_since."""

    serial = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_TERM_LENGTH,
        help_text="3 or more digits match anywhere; end with * to match the beginning.",
    )
    order = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_TERM_LENGTH,
        help_text="Order number, matched like serial.",
    )
    type = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_TERM_LENGTH,
        help_text="Part of the device type's name, e.g. multical.",
    )
    owner = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_TERM_LENGTH,
        help_text="Part of the owning (TRANSFERRED TO) organization's name.",
    )
    changed_since = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601. Devices changed since then, or visible to you since then.",
    )


class DeviceListQuerySerializer(SearchSerializer):
    cursor = serializers.CharField(required=False, help_text="From the previous page's next link.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=1000)


class DeviceSerializer(serializers.Serializer):
    serial = serializers.CharField()
    manufacturer = serializers.CharField()
    kind = serializers.CharField()
    type = serializers.CharField(source="device_type")
    type_no = serializers.CharField()
    config_no = serializers.CharField()
    consumption_type = serializers.CharField()
    production_year = serializers.IntegerField(allow_null=True)
    order_no = serializers.CharField()
    owner = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    changed_at = serializers.DateTimeField()

    def get_owner(self, device: Any) -> str | None:
        """TRANSFERRED TO: the owning organization's name."""
        return device.owner.name if device.owner_id else None


# The columns a device list page reads (values(), no model instance per row) and how
# device_dicts names them; "owner_name" is the owning organization's name.
DEVICE_VALUES = (
    "id",
    "serial",
    "manufacturer",
    "kind",
    "device_type",
    "type_no",
    "config_no",
    "consumption_type",
    "production_year",
    "order_no",
    "created_at",
    "changed_at",
)


def _iso_stamp_in(zone: tzinfo) -> Callable[[datetime | None], str | None]:
    """DRF's DateTimeField.to_representation (ISO 8601, UTC as "Z") for one time zone looked
    up once: DRF asks for the current time zone again for every value, 40% of a 1,000-device
    page's CPU."""

    def stamp(value: datetime | None) -> str | None:
        if not value:
            return None
        text = value.astimezone(zone).isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text

    return stamp


# DRF's DateTimeField text of a UTC time (ISO 8601, microseconds only when there are any, "Z"),
# written by PostgreSQL.
_UTC_ISO_SQL = (
    "replace(to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
    "|| 'Z', '.000000Z', 'Z')"
)
_TIMES = ("created_at", "changed_at")


def device_values(devices: QuerySet[Any]) -> QuerySet[Any]:
    """The rows ``device_dicts`` takes: DEVICE_VALUES and "owner_name". In UTC (the settings'
    zone) on PostgreSQL the two times arrive as their text already ("created_at_text",
    "changed_at_text"): loaded as datetimes (psycopg's Python loader, under Django's) and
    written out again, they took a quarter of a 1,000-device page's time."""
    if connection.vendor != "postgresql" or timezone.get_current_timezone_name() != "UTC":
        return devices.values(*DEVICE_VALUES, owner_name=F("owner__name"))
    return devices.values(
        *(name for name in DEVICE_VALUES if name not in _TIMES),
        owner_name=F("owner__name"),
        **{
            f"{name}_text": Func(F(name), template=_UTC_ISO_SQL, output_field=CharField())
            for name in _TIMES
        },
    )


def _as_written(value: str | None) -> str | None:
    return value


def device_dicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DeviceSerializer's output for rows of ``device_values``: the same members and values,
    without a field object per value (a 1,000-device page: half its CPU)."""
    if rows and "created_at_text" in rows[0]:
        stamp: Callable[[Any], str | None] = _as_written
        created, changed = "created_at_text", "changed_at_text"
    else:
        stamp = _iso_stamp_in(timezone.get_current_timezone())
        created, changed = _TIMES
    return [
        {
            "serial": row["serial"],
            "manufacturer": row["manufacturer"],
            "kind": row["kind"],
            "type": row["device_type"],
            "type_no": row["type_no"],
            "config_no": row["config_no"],
            "consumption_type": row["consumption_type"],
            "production_year": row["production_year"],
            "order_no": row["order_no"],
            "owner": row["owner_name"],
            "created_at": stamp(row[created]),
            "changed_at": stamp(row[changed]),
        }
        for row in rows
    ]


class _DeviceSetSerializer(serializers.Serializer):
    serials = SerialListField(required=False)
    search = SearchSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("serials" in attrs) == ("search" in attrs):
            raise serializers.ValidationError("Send either serials or search, not both.")
        return attrs


class KeysRequestSerializer(_DeviceSetSerializer):
    format = serializers.ChoiceField(
        choices=FORMATS,
        default="json",
        help_text="json: a streamed JSON document; zip / kem: the web download's encrypted file.",
    )
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=512,
        help_text="The file password (zip: 12-128 characters, strong; kem: 8-16 ASCII).",
        style={"input_type": "password"},
    )
    skip_unknown = serializers.BooleanField(
        default=False,
        help_text="zip / kem: write the file without unknown serials instead of refusing it.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["format"] != "json" and not attrs.get("password"):
            raise serializers.ValidationError({"password": ["A file password is required."]})
        return attrs


class KeyedDeviceSerializer(serializers.Serializer):
    serial = serializers.CharField()
    manufacturer = serializers.CharField()
    kind = serializers.CharField()
    type = serializers.CharField()
    type_no = serializers.CharField()
    config_no = serializers.CharField()
    consumption_type = serializers.CharField()
    production_year = serializers.IntegerField(allow_null=True)
    order_no = serializers.CharField()
    keys = serializers.DictField(child=serializers.CharField(), help_text="Key name → hex.")


class KeysResponseSerializer(serializers.Serializer):
    """In this member order: the devices stream first, the counts follow them."""

    format = serializers.CharField()
    devices = KeyedDeviceSerializer(
        many=True,
        help_text="Serials: in the order sent, the first 1,000 serials' devices by id, then the "
        "next 5,000 serials' by id, the next 15,000 serials' by id, then the rest's by id. "
        "A search: by id.",
    )
    count = serializers.IntegerField(help_text="How many devices the document holds.")
    unknown_serials = serializers.ListField(
        child=serializers.CharField(),
        help_text="Well-formed serials that name no device you may see, in the order sent.",
    )
    invalid_serials = serializers.ListField(
        child=serializers.CharField(), help_text="Malformed serials, in the order sent."
    )


class EmailsField(serializers.ListField):
    child = serializers.CharField(max_length=254)


class AssignRequestSerializer(_DeviceSetSerializer):
    emails = EmailsField(help_text="The customers' email addresses.")
    expires_on = serializers.DateField(
        required=False, allow_null=True, help_text="The rights work through this day."
    )
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RevokeRequestSerializer(_DeviceSetSerializer):
    emails = EmailsField(help_text="The customers whose rights on these devices end.")


class AssignResponseSerializer(serializers.Serializer):
    device_count = serializers.IntegerField()
    granted = serializers.DictField(child=serializers.IntegerField())
    already = serializers.DictField(child=serializers.IntegerField())
    invited = serializers.DictField(child=serializers.IntegerField())
    already_invited = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=(
            "Addresses invited before to all of these devices: no email was sent and the "
            "invitation link sent before still works."
        ),
    )


class RevokeResponseSerializer(serializers.Serializer):
    device_count = serializers.IntegerField()
    revoked = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=(
            "Per address, how many of these devices it loses: rights ended, or for an address "
            "that has only a pending invitation, devices taken out of that invitation (an "
            "invitation left without devices is cancelled)."
        ),
    )


class DisclosureQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class TokenRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class DisclosureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    channel = serializers.CharField()
    token = TokenRefSerializer(allow_null=True)
    format = serializers.CharField(allow_null=True)
    device_count = serializers.IntegerField(help_text="Of your organizations' devices.")
    serials = serializers.ListField(child=serializers.CharField())
    serials_truncated = serializers.BooleanField()
