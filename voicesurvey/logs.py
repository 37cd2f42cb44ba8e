"""Logging set-up: no phone number leaves the process in clear, whoever logs it.

Masking happens where each log record is made (a record factory), not in one handler's filter:
Django's own handlers (`django.server`, the DEBUG console), gunicorn's access log and any
library's logger all get records from the same factory, so none of them can print a number a
message, its arguments, a traceback or a query string carried."""

import logging
import logging.config
import traceback

from contacts.phones import mask_phones_in

_make_record = logging.getLogRecordFactory()


def masked_record(*args, **kwargs) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: let the handler report it as logging does
        return record
    record.msg, record.args = mask_phones_in(message), ()
    if record.exc_info and not record.exc_text:
        # A database error's traceback quotes the row it choked on; format it here, masked,
        # and the formatter uses this text instead of formatting the exception again.
        record.exc_text = mask_phones_in("".join(traceback.format_exception(*record.exc_info)))
        record.exc_text = record.exc_text.rstrip("\n")
    if record.stack_info:
        record.stack_info = mask_phones_in(record.stack_info)
    return record


def configure(config: dict) -> None:
    """settings.LOGGING_CONFIG: Django's dictConfig, then the masking record factory."""
    logging.config.dictConfig(config)
    if logging.getLogRecordFactory() is not masked_record:
        logging.setLogRecordFactory(masked_record)
