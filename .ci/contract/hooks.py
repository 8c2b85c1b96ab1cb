"""Schemathesis hooks for nexkey's contract run.

The contract says an end date lies in the future (codes are never issued already expired) and
after the start; a JSON schema cannot say "after today", so generated dates are moved to where
a real call has them: no start (today), an end in 2100. Everything else is sent as generated.
"""

import schemathesis

FUTURE_DATE = "2100-01-01"
FUTURE_MILLIS = 4102444800000  # 2100-01-01T00:00:00Z


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    product = body.get("product")
    if not isinstance(product, dict):
        return
    for start in ("startDate", "startTimestamp"):
        product.pop(start, None)
    if product.get("endDate") is not None:
        product["endDate"] = FUTURE_DATE
    if product.get("expirationTimestamp") is not None:
        product["expirationTimestamp"] = FUTURE_MILLIS
