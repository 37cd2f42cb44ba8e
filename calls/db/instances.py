"""Whole model rows read by hand-written SQL: the columns to select, and the instances back.

For the hot statements that read several tables in one round trip (calls.webhooks)."""

from django.db import connection


def select_columns(model, alias: str) -> str:
    """Every concrete column of `model`, qualified by `alias`, in field order."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def model_instances(columns: list, *models) -> list:
    """The instances of `models` whose columns follow each other in `columns` (None for an
    outer join that found nothing), their JSON read as from_db_value would."""
    instances = []
    for model in models:
        fields = model._meta.concrete_fields
        values, columns = columns[: len(fields)], columns[len(fields) :]
        if values[0] is None:  # the primary key
            instances.append(None)
            continue
        for i, field in enumerate(fields):
            if values[i] is not None and hasattr(field, "from_db_value"):
                values[i] = field.from_db_value(values[i], None, connection)
        instances.append(model.from_db(connection.alias, [f.attname for f in fields], values))
    return instances
