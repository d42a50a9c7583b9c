//! The event table, for core/v1 events and events.k8s.io/v1 events alike (the apiserver prints
//! both through the same printer, after mapping events.k8s.io fields onto the core ones).

use super::{at, col, int, name, opt_int, parse_time, since, string, wide, Col, NAME_DESC};
use jiff::Timestamp;
use serde_json::Value;

pub(super) const COLUMNS: &[Col] = &[
    col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    col("Object", "string", "The object that this event is about."),
    wide("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]."),
    wide("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
    col("Message", "string", "A human-readable description of the status of this operation."),
    wide("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    wide("Count", "string", "The number of times this event has occurred."),
    Col { name: "Name", ty: "string", format: "name", description: NAME_DESC, priority: 1 },
];

/// Where each printed field lives in one event flavour.
struct Fields {
    involved: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
}

const CORE: Fields = Fields {
    involved: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
};

const EVENTS_V1: Fields = Fields {
    involved: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
};

pub(super) fn core_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    cells(o, &CORE, now)
}

pub(super) fn v1_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    cells(o, &EVENTS_V1, now)
}

fn cells(o: &Value, f: &Fields, now: Timestamp) -> Vec<Value> {
    let first = match parse_time(at(o, &[f.first])) {
        Some(t) => since(Some(t), now),
        None => since(parse_time(at(o, &["eventTime"])), now),
    };
    let mut last = match parse_time(at(o, &[f.last])) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(o, &[f.count]);
    if at(o, &["series"]).is_some() {
        last = since(parse_time(at(o, &["series", "lastObservedTime"])), now);
        count = opt_int(o, &["series", "count"]).unwrap_or(0);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }

    let kind = string(o, &[f.involved, "kind"]).to_lowercase();
    let involved_name = string(o, &[f.involved, "name"]);
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };

    let component = first_non_empty(
        string(o, &[f.source, "component"]),
        string(o, &["reportingController"]),
    );
    let instance = first_non_empty(
        string(o, &[f.source, "host"]),
        string(o, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        last.into(),
        string(o, &["type"]).into(),
        string(o, &["reason"]).into(),
        target.into(),
        string(o, &[f.involved, "fieldPath"]).into(),
        source.into(),
        string(o, &[f.message]).trim().into(),
        first.into(),
        count.into(),
        name(o).into(),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, cells, column_names};
    use serde_json::{json, Value};

    fn arr(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    #[test]
    fn columns() {
        let cols = column_names("", "events");
        let want = [
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1),
        ];
        assert_eq!(
            cols,
            want.iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect::<Vec<_>>()
        );
        assert_eq!(column_names("events.k8s.io", "events"), cols);
    }

    #[test]
    fn core_events() {
        let e = json!({"metadata":{"name":"nginx.17d","namespace":"default"},
            "involvedObject":{"kind":"Pod","name":"nginx","namespace":"default","fieldPath":"spec.containers{nginx}"},
            "reason":"Pulled","message":"  Successfully pulled image \"nginx\"\n","type":"Normal",
            "source":{"component":"kubelet","host":"node1"},
            "firstTimestamp":ago(600),"lastTimestamp":ago(30),"count":4});
        assert_eq!(
            cells("", "events", e),
            arr(json!([
                "30s",
                "Normal",
                "Pulled",
                "pod/nginx",
                "spec.containers{nginx}",
                "kubelet, node1",
                "Successfully pulled image \"nginx\"",
                "10m",
                4,
                "nginx.17d"
            ]))
        );
        // New-style event written through core/v1: eventTime, reporting fields, no count.
        let e = json!({"metadata":{"name":"n.1"},"involvedObject":{"kind":"Node","name":"n"},
            "reason":"Starting","message":"","type":"Normal","eventTime":"2024-06-01T11:59:00.000000Z",
            "reportingController":"kubelet","reportingInstance":""});
        assert_eq!(
            cells("", "events", e),
            arr(json!([
                "60s", "Normal", "Starting", "node/n", "", "kubelet", "", "60s", 1, "n.1"
            ]))
        );
        // Series override the last time and the count; no involved name prints the kind alone.
        let e = json!({"metadata":{"name":"s"},"involvedObject":{"kind":"Namespace"},"type":"Warning","reason":"R",
            "firstTimestamp":ago(3600),"count":2,"series":{"count":7,"lastObservedTime":"2024-06-01T11:59:50.000000Z"}});
        let c = cells("", "events", e);
        assert_eq!(
            (c[0].clone(), c[3].clone(), c[7].clone(), c[8].clone()),
            (json!("10s"), json!("namespace"), json!("60m"), json!(7))
        );
        // No times at all.
        let e = json!({"metadata":{"name":"z"}});
        assert_eq!(
            cells("", "events", e),
            arr(json!([
                "<unknown>",
                "",
                "",
                "",
                "",
                "",
                "",
                "<unknown>",
                1,
                "z"
            ]))
        );
    }

    #[test]
    fn events_k8s_io_events() {
        let e = json!({"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"web.1"},
            "eventTime":ago(300),"reportingController":"deployment-controller","reportingInstance":"cp-1",
            "action":"Scaling","reason":"ScalingReplicaSet","type":"Normal",
            "regarding":{"kind":"Deployment","name":"web","namespace":"default"},
            "note":"Scaled up replica set web-5d to 3"});
        assert_eq!(
            cells("events.k8s.io", "events", e),
            arr(json!([
                "5m",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller, cp-1",
                "Scaled up replica set web-5d to 3",
                "5m",
                1,
                "web.1"
            ]))
        );
        let e = json!({"metadata":{"name":"old"},"regarding":{"kind":"Pod","name":"p","fieldPath":"spec.containers{c}"},
            "deprecatedSource":{"component":"kubelet"},"deprecatedFirstTimestamp":ago(7200),"deprecatedLastTimestamp":ago(120),
            "deprecatedCount":3,"note":"x","reason":"BackOff","type":"Warning"});
        assert_eq!(
            cells("events.k8s.io", "events", e),
            arr(json!([
                "2m",
                "Warning",
                "BackOff",
                "pod/p",
                "spec.containers{c}",
                "kubelet",
                "x",
                "120m",
                3,
                "old"
            ]))
        );
    }
}
