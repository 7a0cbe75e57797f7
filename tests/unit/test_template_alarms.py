"""The alarms docs/operations.md promises exist in template.yaml, on the metrics it names, and the
metrics FirmPay writes itself are the ones firmpay.metrics emits, in the namespace and with the
service dimension the functions are given."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from firmpay import metrics

ROOT = Path(__file__).resolve().parents[2]
ALARM = "AWS::CloudWatch::Alarm"
# A row of the table under "## Alarms": | `name` | `Namespace Metric[ / Metric]` | fires when |
DOC_ROW = re.compile(r"^\| `(?P<name>[a-z0-9-]+)` \| `(?P<namespace>\S+) (?P<metrics>[^`]+)` \|", re.MULTILINE)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, errors = decode(str(ROOT / "template.yaml"))
    assert not errors
    assert decoded is not None
    return dict(decoded)


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarm name suffix (after ``firmpay-${Stage}-``) -> the alarm's properties."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] == ALARM:
            props = resource["Properties"]
            name = props["AlarmName"]["Fn::Sub"]
            assert name.startswith("firmpay-${Stage}-"), name
            found[name.removeprefix("firmpay-${Stage}-")] = props
    return found


def documented() -> dict[str, tuple[str, list[str]]]:
    """Alarm name -> (namespace, metric names) from operations.md's alarm table."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("## Alarms\n") : text.index("\n### ", text.index("## Alarms\n"))]
    return {
        row["name"]: (row["namespace"], [m.strip() for m in row["metrics"].split("/")])
        for row in DOC_ROW.finditer(section)
    }


def watched(props: dict[str, Any]) -> list[tuple[Any, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions by name) of each metric an alarm reads."""
    if "MetricName" in props:
        stats = [
            {"Namespace": props["Namespace"], "MetricName": props["MetricName"], "Dimensions": props["Dimensions"]}
        ]
    else:
        stats = [query["MetricStat"]["Metric"] for query in props["Metrics"] if "MetricStat" in query]
    return [
        (stat["Namespace"], stat["MetricName"], {d["Name"]: d["Value"] for d in stat["Dimensions"]}) for stat in stats
    ]


def namespace(value: Any) -> str:
    """``FirmPay/${Stage}`` as written with Fn::Sub, or a plain AWS namespace."""
    return value["Fn::Sub"] if isinstance(value, dict) else str(value)


def test_the_table_is_read() -> None:
    # the parse must see the table, or the checks below prove nothing
    assert len(documented()) >= 5
    assert documented()["sweep-repairs"] == ("FirmPay/<stage>", ["SweepRepairs"])


def test_each_alarm_operations_md_names_exists_on_the_metric_it_names(template: dict[str, Any]) -> None:
    declared = alarms(template)
    for name, (doc_namespace, doc_metrics) in documented().items():
        assert name in declared, f"operations.md names alarm {name}; template.yaml has none"
        read = watched(declared[name])
        assert [metric for _, metric, _ in read] == doc_metrics, name
        assert {namespace(ns).replace("${Stage}", "<stage>") for ns, _, _ in read} == {doc_namespace}, name


def test_each_alarm_of_the_template_is_explained_in_operations_md(template: dict[str, Any]) -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in alarms(template):
        assert name in documented(), f"alarm {name} is not in operations.md's table"
        assert f"- **`{name}`**:" in text, f"operations.md does not say what {name} means and what to do"


def test_the_alarms_operations_asked_for_are_there(template: dict[str, Any]) -> None:
    # the list: DLQ not empty, webhook 5xx, sweep repairs, emails stuck in sending
    assert {"email-dlq-not-empty", "webhook-5xx", "sweep-repairs", "emails-stuck-sending"} <= alarms(template).keys()


def test_firmpay_s_own_metrics_are_the_ones_the_code_writes_in_the_functions_namespace(
    template: dict[str, Any],
) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    written = {
        value
        for name, value in vars(metrics).items()
        if name.isupper() and isinstance(value, str) and name not in ("NAMESPACE_ENV", "LOCAL_NAMESPACE")
    }
    own = [
        (ns, metric, dims)
        for props in alarms(template).values()
        for ns, metric, dims in watched(props)
        if not namespace(ns).startswith("AWS/")
    ]
    assert len(own) >= 5
    for ns, metric, dims in own:
        assert ns == env["POWERTOOLS_METRICS_NAMESPACE"]
        assert metric in written, f"{metric}: firmpay.metrics writes no such metric"
        # the roll-up every line carries (service alone), never a method or an id
        assert dims == {"service": env["POWERTOOLS_SERVICE_NAME"]}, metric


def test_every_queue_has_a_not_empty_alarm(template: dict[str, Any]) -> None:
    queues = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"]
    watched_queues = [
        dims["QueueName"]
        for props in alarms(template).values()
        for ns, metric, dims in watched(props)
        if (ns, metric) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    ]
    assert queues
    assert sorted(watched_queues, key=str) == sorted(
        ({"Fn::GetAtt": [queue, "QueueName"]} for queue in queues), key=str
    )


def test_the_webhook_alarm_watches_the_webhook_route_of_this_api(template: dict[str, Any]) -> None:
    [(_, _, dims)] = watched(alarms(template)["webhook-5xx"])
    event = template["Resources"]["StripeWebhookFunction"]["Properties"]["Events"]["Webhook"]["Properties"]
    api = template["Resources"]["Api"]["Properties"]
    assert (dims["Resource"], dims["Method"]) == (event["Path"], event["Method"].upper())
    assert (dims["ApiName"], dims["Stage"]) == (api["Name"], api["StageName"])
    # method-level metrics exist only with detailed metrics on the stage
    assert api["MethodSettings"][0]["MetricsEnabled"] is True


def test_the_sweep_failing_alarm_watches_the_sweep_function(template: dict[str, Any]) -> None:
    [(ns, metric, dims)] = watched(alarms(template)["sweep-failing"])
    assert (ns, metric, dims) == ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": "PaymentSweepFunction"}})


def test_every_alarm_notifies_the_topic_when_it_fires_and_clears_and_email_is_optional(
    template: dict[str, Any],
) -> None:
    for name, props in alarms(template).items():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name  # no data: nothing happened
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert template["Conditions"][subscription["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
