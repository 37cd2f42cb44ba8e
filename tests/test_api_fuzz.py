"""Schemathesis against the live schema, through WSGI: every operation, its coverage and
fuzzing phases (and the stateful one, over the links it infers), authenticated as a superuser.
Fails on any 5xx and any response the schema does not describe. Deterministic (derandomized,
no example database) and bounded so it stays within a minute."""

import json

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import (
    AnswerFactory,
    CallEventFactory,
    ExclusionFactory,
    QuestionFactory,
    ScheduledCallFactory,
)

pytestmark = pytest.mark.fuzz

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
MAX_EXAMPLES = 5


@pytest.fixture
def api_headers(api_client) -> dict:
    """The superuser's credentials as api_client sends them (whatever the token scheme)."""
    return {"Authorization": api_client._credentials["HTTP_AUTHORIZATION"]}


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """Schemathesis calls the WSGI app itself: as Django's test client does, keep the request
    signals from closing the connection that holds the test's transaction (PostgreSQL)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def some_rows(db):
    """One of each thing, so reads by id and the actions find something."""
    answer = AnswerFactory()
    QuestionFactory(campaign=answer.attempt.campaign, position=2)
    CallEventFactory(attempt=answer.attempt)
    ScheduledCallFactory(contact=answer.attempt.contact)
    ExclusionFactory()


def load_schema():
    """The schema as /api/schema/ serves it to a signed-in client (generated here: no user
    exists at import time to sign in with), called through WSGI."""
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = get_wsgi_application()
    schema.config.phases.update(phases=["coverage", "fuzzing", "stateful"])
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    return schema


schema = load_schema()


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, some_rows, api_headers):
    case.call_and_validate(headers=api_headers, checks=CHECKS)


def test_stateful_sequences_answer_within_the_schema(some_rows, api_headers):
    stateful = load_schema()
    stateful.config.update(headers=api_headers)

    class Workflow(stateful.as_state_machine()):
        def validate_response(self, response, case, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=5,
            stateful_step_count=4,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
