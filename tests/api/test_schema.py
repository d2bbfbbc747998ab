"""schemathesis against the app's own /openapi.json, in-process, on SQLite and PostgreSQL.

Every operation is called with generated valid and invalid input, as ops (the widest rights): no answer may
be a 5xx, undocumented, or break the declared schema; invalid input must be refused with a 4xx; a route that
declares authentication must refuse the same call without it (schemathesis's `ignored_auth` check).
Not checked: that every schema-valid request is accepted (`positive_data_acceptance`): a well-formed request
may still name a stage the model lacks or a team that does not exist, and 422 is the right answer to that.

The operations are driven through Hypothesis directly (`APIOperation.as_strategy`), one test per operation,
because schemathesis's pytest plugin does not run under pytest 9.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from apikit import Org
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from leadledger import analytics
from leadledger.api import create_app
from leadledger.bootstrap import build_app
from leadledger.services import leads as svc

EXAMPLES = 20


# The app's /openapi.json, as served: it does not depend on the database (test_every_app_serves_the_same_schema),
# so it is made once here (FastAPI takes about half a second to build it) rather than by every test's app.
SCHEMA_JSON = json.dumps(create_app(build_app(db_url="sqlite://")).openapi())
OPERATIONS = [(path, method.upper()) for path, methods in json.loads(SCHEMA_JSON)["paths"].items() for method in methods]


def test_every_app_serves_the_same_schema(org: Org) -> None:
    served = TestClient(create_app(org.app)).get("/openapi.json")
    assert served.status_code == 200 and served.json() == json.loads(SCHEMA_JSON)


@pytest.mark.slow
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_operation_conforms_to_the_schema(path: str, method: str, org: Org) -> None:
    # a few leads, so generated ids sometimes find one (most get a 404, which the schema declares)
    for n in range(3):
        svc.create_lead(org.app, actor="admin", fields={"name": f"Lead {n}", "email": f"l{n}@example.com"}, owner="ana")
    if path.startswith(("/api/v1/reports", "/api/v1/segments", "/api/v1/leads")):
        # the first read of the analytics store copies the ledger into it: done here, so a loaded machine's
        # slow first copy is not taken for a request that hangs (schemathesis times requests out)
        analytics.sync(org.app)
    schema = schemathesis.openapi.from_dict(json.loads(SCHEMA_JSON))  # what from_asgi("/openapi.json", app) loads
    schema.app, schema.location = create_app(org.app), "/openapi.json"
    token = org.tokens["olga"]

    class OpsToken:
        """Bearer auth as schemathesis knows it: a case it makes without auth stays without (ignored_auth)."""

        def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
            return token

        def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    schema.auth(refresh_interval=None)(OpsToken)
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE, auth_storage=schema.auth),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, auth_storage=schema.auth),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        answer = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        statuses.append(answer.status_code)

    statuses: list[int] = []
    call()
    if "/hooks/" not in path:  # signed webhooks take no bearer token: a generated signature never verifies
        assert any(status != 401 for status in statuses), f"every call was unauthenticated: {statuses}"
