"""Drives a running nexkey through a client openapi-python-client generated from
openapi/openapi.json: every operation is called once with a real request, and its real answer
must parse into the generated model of its documented 2xx answer (a parse failure raises).

Usage: python client_check.py BASE_URL NEXWAY_USER NEXWAY_PASSWORD ADMIN_KEY POOL_PRODUCT
(the generated package `nexkey_client` must be importable).
"""

import base64
import sys
import uuid

from nexkey_client import AuthenticatedClient, Client
from nexkey_client.api.fulfillment import (
    licenses_cancel,
    licenses_new,
    licenses_reactivate,
    licenses_renew,
    licenses_suspend,
    licenses_upgrade,
)
from nexkey_client.api.operations import health_live, health_ready, metrics
from nexkey_client.api.support import (
    get_license,
    list_products,
    lkey,
    reinstate_license,
    revoke_license,
    search_licenses,
)
from nexkey_client.models import (
    ActionRequest,
    FulfillmentAnswer,
    HealthStatus,
    ImportResult,
    LicenseDetail,
    LicenseRequest,
    NewLegacyRequest,
    NewFulfillmentBody,
    ProductDto,
    PurchaseDto,
    PurchaseList,
)

base, user, password, admin_key, pool_product = sys.argv[1:6]
checked = []


def basic(name, secret):
    token = base64.b64encode(f"{name}:{secret}".encode()).decode()
    return AuthenticatedClient(base_url=base, token=token, prefix="Basic")


def expect(operation, response, model):
    """The answer is 2xx and parsed into `model` by the generated client."""
    assert 200 <= response.status_code < 300, f"{operation}: {response.status_code} {response.content!r}"
    parsed = response.parsed
    assert isinstance(parsed, model), f"{operation}: parsed {type(parsed).__name__}, not {model.__name__}"
    checked.append(operation)
    return parsed


nexway = basic(user, password)
admin = basic(admin_key, "")
fulfillment = f"CLIENT-{uuid.uuid4()}"
legacy = {
    "metadata": {"order": f"ORD-{fulfillment}"},
    "product": {"nexwayFulfillmentId": fulfillment, "nexwayProductId": "NX-1",
                "publisherProductId": "ACME-PRO", "quantity": 2, "endDate": "2099-01-01"},
    "user": {"email": "buyer@example.com", "firstName": "Ada", "lastName": "Lovelace"},
}
answer = expect("new", licenses_new.sync_detailed(client=nexway, body=NewLegacyRequest.from_dict(legacy)), FulfillmentAnswer)
codes = [license.activation_code for license in answer.licenses]
assert len(codes) == 2, codes

current = NewFulfillmentBody.from_dict({
    "fulfillmentId": f"{fulfillment}-B", "checkout": {"orderId": "ORD-B"},
    "user": {"email": "buyer@example.com"}, "product": {"publisherProductId": "ACME-PRO"},
})
expect("new (current body)", licenses_new.sync_detailed(client=nexway, body=current), FulfillmentAnswer)

later = lambda order: LicenseRequest.from_dict({  # noqa: E731
    **legacy, "metadata": {"order": order},
    "product": {**legacy["product"], "publisherFulfillmentId": answer.publisher_fulfillment_id},
})
for name, call in [("renew", licenses_renew), ("upgrade", licenses_upgrade),
                   ("suspend", licenses_suspend), ("reactivate", licenses_reactivate),
                   ("cancel", licenses_cancel)]:
    expect(name, call.sync_detailed(client=nexway, body=later(f"ORD-{name}")), FulfillmentAnswer)

code = codes[0]
purchase = expect("lkey", lkey.sync_detailed(code, client=admin), PurchaseDto)
assert purchase.license_key == code
found = expect("searchLicenses", search_licenses.sync_detailed(client=admin, nexway_fulfillment_id=fulfillment), PurchaseList)
assert found.total_results >= 2, found.total_results
expect("getLicense", get_license.sync_detailed(code, client=admin), LicenseDetail)
expect("reinstateLicense", reinstate_license.sync_detailed(code, client=admin, body=ActionRequest(reason="client check")), LicenseDetail)
expect("revokeLicense", revoke_license.sync_detailed(code, client=admin, body=ActionRequest(reason="client check")), LicenseDetail)
products = list_products.sync_detailed(client=admin)
assert products.status_code == 200 and all(isinstance(p, ProductDto) for p in products.parsed), products.content
checked.append("listProducts")

# The generated function for a text/csv body is unusable (it expects a File it was not told
# about), so the call goes through the generated client's HTTP session; the answer is still
# parsed by the generated model.
csv = f"code\nCLIENT-{uuid.uuid4().hex[:12].upper()}\n"
raw = admin.get_httpx_client().post(f"/admin/products/{pool_product}/pool", content=csv,
                                    headers={"content-type": "text/csv"})
assert raw.status_code == 200, raw.text
imported = ImportResult.from_dict(raw.json())
assert imported.imported == 1, raw.text
checked.append("importPoolCodes")

anonymous = Client(base_url=base)
expect("health/live", health_live.sync_detailed(client=anonymous), HealthStatus)
expect("health/ready", health_ready.sync_detailed(client=anonymous), HealthStatus)
expect("metrics", metrics.sync_detailed(client=anonymous), str)

print(f"generated client: {len(checked)} operations answered and parsed: {', '.join(checked)}")
