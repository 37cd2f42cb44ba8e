"""Saving a campaign together with its questions, validated by the models' own rules."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from campaigns.models import KEY_NAMES, Campaign, Question

QUESTION_FIELDS = (
    "position",
    "prompt",
    "kind",
    "min_value",
    "max_value",
    "valid_answers",
    "max_digits",
    "reprompt_message",
    "max_reprompts",
)


def validate_campaign(*, campaign: Campaign, fields: dict) -> None:
    """Apply `fields` to the (unsaved) campaign and run Campaign.clean(); raises
    ValidationError with the fields at fault. clean() may normalise values (caller_id)."""
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.clean()


def validate_questions(campaign: Campaign, questions: list[dict]) -> None:
    """Each question's clean(), positions unique within the campaign, and no answer on the
    campaign's opt-out or call-back key. A question given by position only keeps its stored
    fields."""
    errors: list[str] = []
    positions: set[int] = set()
    stored = {q.position: q for q in campaign.questions.all()} if campaign.pk else {}
    for data in questions:
        problem: dict = {}
        question = Question(**{k: v for k, v in data.items() if k in QUESTION_FIELDS})
        if data.get("position") in stored:
            base = stored[data["position"]]
            for name in QUESTION_FIELDS:
                if name not in data:
                    setattr(question, name, getattr(base, name))
        try:
            question.clean()
        except ValidationError as exc:
            problem.update(exc.message_dict)
        else:
            problem.update(question.reserved_key_clashes(campaign))
        if data.get("position") in positions:
            problem["position"] = [
                gettext("Position %(position)s is used twice.") % {"position": data["position"]}
            ]
        positions.add(data.get("position"))
        data["max_digits"] = question.max_digits  # clean() widens it for large scales
        for field, messages in problem.items():  # one line each, saying where
            for message in [messages] if isinstance(messages, str) else messages:
                errors.append(
                    gettext("Question %(position)s, %(field)s: %(message)s")
                    % {"position": data.get("position"), "field": field, "message": message}
                )
    if errors:
        raise ValidationError({"questions": errors})


def validate_keys(campaign: Campaign) -> None:
    """The campaign's opt-out and call-back keys against its stored questions' answers."""
    errors = {}
    for question in campaign.questions.all():
        field = question.clashing_key(campaign)
        if field and field not in errors:
            key = getattr(campaign, field)
            errors[field] = gettext(
                "Question %(position)s takes %(key)s as an answer; choose another %(name)s key."
            ) % {"position": question.position, "key": key, "name": KEY_NAMES[field]}
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def save_campaign(
    *,
    campaign: Campaign,
    fields: dict,
    questions: list[dict] | None = None,
    by=None,
) -> Campaign:
    """Create or update a campaign and, when `questions` is given, make its questions exactly
    those (matched by position: existing ones are updated in place, so their answers stay).
    A question that already has answers cannot be removed; questions not given are kept."""
    validate_campaign(campaign=campaign, fields=fields)
    if questions is not None:
        validate_questions(campaign, questions)
    elif campaign.pk:  # the keys may have changed under the stored questions
        validate_keys(campaign)
    if campaign.pk is None and by is not None and getattr(by, "is_authenticated", False):
        campaign.created_by = by
    campaign.save()
    if questions is None:
        return campaign

    existing = {q.position: q for q in campaign.questions.select_for_update()}
    wanted = {data["position"]: data for data in questions}
    removed = [q for pos, q in existing.items() if pos not in wanted]
    answered = [q.position for q in removed if q.answers.exists()]
    if answered:
        raise ValidationError(
            {
                "questions": gettext(
                    "Question(s) at position %(positions)s already have answers and cannot be "
                    "removed."
                )
                % {"positions": ", ".join(map(str, answered))}
            }
        )
    missing = [p for p, data in wanted.items() if p not in existing and not data.get("prompt")]
    if missing:
        where = ", ".join(map(str, missing))
        raise ValidationError(
            {
                "questions": gettext("New question(s) at position %(positions)s need a prompt.")
                % {"positions": where}
            }
        )
    Question.objects.filter(pk__in=[q.pk for q in removed]).delete()
    for position, data in wanted.items():
        question = existing.get(position) or Question(campaign=campaign)
        for name in QUESTION_FIELDS:
            if name in data:
                setattr(question, name, data[name])
        question.save()
    return campaign
