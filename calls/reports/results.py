"""A campaign's results as CSV, streamed: one row per contact with its latest answers.

Contacts are read with a server-side iterator in chunks; each chunk costs one more query (the
answers of its contacts), so the export's memory and query count follow the chunk, not the
campaign."""

from collections.abc import Iterator

from django.db.models import OuterRef, Subquery

from calls.models import Answer, CallAttempt
from calls.reports.stats import outcome_expression
from campaigns.models import Campaign
from contacts.exporting import attribute_cells, attribute_header, attribute_keys
from contacts.models import Contact
from voicesurvey.spreadsheets import chunks, csv_stream

CHUNK_SIZE = 2000
FIXED_COLUMNS = [
    "phone",
    "name",
    "external_id",
    "state",
    "attempts_count",
    "last_attempt_at",
    "last_outcome",
]


def question_column(position: int, prompt: str) -> str:
    """The question's whole text (a spreadsheet wraps it), behind its number."""
    return f"q{position}: {' '.join(prompt.split())}"


def iter_results_csv(campaign: Campaign) -> Iterator[str]:
    """Yield the CSV text: the header, then the rows of each chunk of contacts.

    After the contact's own columns come its attributes (the import's extra columns, one
    column each), then one column per question: the contact's latest answer to it (a later
    call that answered the question again wins)."""
    questions = list(
        campaign.questions.order_by("position").values_list("id", "position", "prompt")
    )
    keys = attribute_keys(Contact.objects.filter(campaign=campaign))
    header = (
        FIXED_COLUMNS
        + attribute_header(keys, FIXED_COLUMNS)
        + [question_column(pos, prompt) for _, pos, prompt in questions]
    )
    last_attempt = CallAttempt.objects.filter(contact=OuterRef("pk")).order_by("-attempt_number")
    contacts = (
        Contact.objects.filter(campaign=campaign)
        .order_by("id")
        .annotate(
            last_outcome=Subquery(last_attempt.annotate(o=outcome_expression()).values("o")[:1])
        )
        .values_list("id", *FIXED_COLUMNS, "attributes")
        .iterator(chunk_size=CHUNK_SIZE)
    )

    def rows(chunk):
        answers = _latest_answers([row[0] for row in chunk])
        for contact_id, *fixed, attributes in chunk:
            mine = answers.get(contact_id, {})
            yield [
                *fixed,
                *attribute_cells(attributes, keys),
                *(mine.get(qid, "") for qid, _, _ in questions),
            ]

    yield from csv_stream(header, (rows(chunk) for chunk in chunks(contacts, CHUNK_SIZE)))


def _latest_answers(contact_ids: list[int]) -> dict[int, dict[int, str]]:
    """{contact id: {question id: latest value}} for these contacts, in one query."""
    latest: dict[int, dict[int, str]] = {}
    rows = (
        Answer.objects.filter(attempt__contact_id__in=contact_ids)
        .order_by("answered_at", "id")
        .values_list("attempt__contact_id", "question_id", "value")
    )
    for contact_id, question_id, value in rows:
        latest.setdefault(contact_id, {})[question_id] = value
    return latest
