//! The page an approver's link opens, as plain HTML: no script, every shown value escaped, and
//! a form that only a person pressing a button submits. Rendering is pure; the handler picks
//! which page.

use super::approval::{ApprovalRequest, ApprovalStatus, Ballot, RollbackOrder, Verdict};
use super::notice::{evidence_lines, utc};
use super::schedule::{DeploySchedule, Held};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::sync::LazyLock;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub html: String,
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111}\
h1{font-size:1.4rem}dt{font-weight:600}dd{margin:0 0 .5rem 0;word-break:break-all}\
.state{padding:.75rem 1rem;border-radius:6px;background:#eef}\
textarea{width:100%;min-height:4rem}fieldset{border:1px solid #ccc;border-radius:6px}\
label{margin-right:1.5rem}button{font-size:1rem;padding:.5rem 1.25rem}";

/// The response headers every page carries: no script at all (the style is allowed by its
/// hash), forms post only back here, no framing, no caching, no referrer (the URL holds the
/// token), no type sniffing.
pub static HEADERS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    use base64::Engine;
    let style_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    vec![
        ("content-type", "text/html; charset=utf-8".into()),
        (
            "content-security-policy",
            format!(
                "default-src 'none'; script-src 'none'; style-src 'sha256-{style_hash}'; img-src 'none'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
        ),
        ("x-frame-options", "DENY".into()),
        ("cache-control", "no-store".into()),
        ("referrer-policy", "no-referrer".into()),
        ("x-content-type-options", "nosniff".into()),
    ]
});

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

fn document(status: u16, title: &str, body: &str) -> Page {
    Page {
        status,
        html: format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex, nofollow\">\
             <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
            title = escape(title),
        ),
    }
}

/// Unknown or forged links: nothing about any request.
pub fn not_found() -> Page {
    document(404, "Not found", "<h1>Not found</h1><p>This link is not valid.</p>")
}

/// An expired link: nothing about the request either.
pub fn gone() -> Page {
    document(
        410,
        "Link expired",
        "<h1>This link has expired</h1><p>The approval request it belonged to is closed.</p>",
    )
}

/// A POST that did not come from this link's page, or from a page older than an hour.
pub fn stale_form() -> Page {
    document(
        403,
        "Form expired",
        "<h1>Nothing was decided</h1><p>This form is too old or did not come from this link's page. \
         Open the link from your message again and decide there.</p>",
    )
}

/// The link's approver was taken off the stage's approvers since the request was made.
pub fn no_longer_approver() -> Page {
    document(
        403,
        "Not an approver",
        "<h1>Nothing was decided</h1><p>This link's approver is no longer an approver of this stage.</p>",
    )
}

/// A POST from the page without a decision (neither Approve nor Reject chosen).
pub fn no_decision() -> Page {
    document(
        400,
        "No decision",
        "<h1>Nothing was decided</h1><p>Choose Approve or Reject. Open the link from your message again.</p>",
    )
}

/// A Cancel without its box ticked: what a scanner submitting forms would send.
pub fn unconfirmed_cancel() -> Page {
    document(
        400,
        "Not cancelled",
        "<h1>Nothing was cancelled</h1><p>Tick the box to confirm. Open the link from your message again.</p>",
    )
}

pub fn method_not_allowed() -> Page {
    document(405, "Method not allowed", "<h1>Method not allowed</h1>")
}

/// The records could not be reached: nothing was decided, try again.
pub fn unavailable() -> Page {
    document(
        503,
        "Try again",
        "<h1>Try again in a moment</h1><p>Nothing was decided.</p>",
    )
}

/// What a holder of `ballot`'s link sees of `request` at `now`; with `form_nonce`, the
/// Approve / Reject form (only while the request is open and this ballot has not voted).
/// `notice` is a line on top: what the last POST did.
pub fn request_page(
    request: &ApprovalRequest,
    ballot: &Ballot,
    form_nonce: Option<&str>,
    notice: Option<&str>,
    status: u16,
    now: DateTime<Utc>,
    schedule: &DeploySchedule,
) -> Page {
    let image = &request.image;
    let mut body = String::new();
    let heading = match &request.rollback {
        Some(_) => format!(
            "Rollback of {} in {} to {}",
            request.application, request.stage, image.tag
        ),
        None => format!("Release {} of {} to {}", image.tag, request.application, request.stage),
    };
    let _ = write!(body, "<h1 id=\"title\">{}</h1>", escape(&heading));
    if let Some(notice) = notice {
        let _ = write!(body, "<p class=\"state\" id=\"notice\">{}</p>", escape(notice));
    }
    let _ = write!(
        body,
        "<p class=\"state\" id=\"state\">{}</p>",
        escape(&state_line(request, now))
    );
    if let Some(held) = held(request, schedule, now) {
        let _ = write!(
            body,
            "<p class=\"state\" id=\"held\">Held until {} UTC: {}. The deploy starts then.</p>",
            utc(held.until),
            escape(&held.why)
        );
    }
    if let Some(order) = &request.rollback {
        rollback_section(&mut body, request, order);
    }
    let _ = write!(
        body,
        "<h2>{}</h2><dl>",
        if request.rollback.is_some() {
            "The version it goes back to"
        } else {
            "What ships"
        }
    );
    for (term, value) in [
        ("Application", request.application.as_str().to_owned()),
        ("Stage", format!("{} (cluster {})", request.stage, request.cluster)),
        ("Tag", image.tag.to_string()),
        ("Digest", image.digest.to_string()),
        ("Image", image.uri.clone()),
        ("Requested at", format!("{} UTC", utc(request.requested_at))),
        ("Expires at", format!("{} UTC", utc(request.expires_at))),
        ("Your ballot", ballot.approver.to_string()),
    ] {
        let id = term.to_ascii_lowercase().replace(' ', "-");
        let _ = write!(body, "<dt>{term}</dt><dd id=\"{id}\">{}</dd>", escape(&value));
    }
    body.push_str("</dl>");
    if request.rollback.is_none() {
        body.push_str("<h2>Services</h2><ul>");
        for service in &request.services {
            let _ = write!(
                body,
                "<li>{} (runs now: {})</li>",
                escape(service.service.as_str()),
                escape(service.running_now.as_deref().unwrap_or("unknown"))
            );
        }
        let heading = match &request.evidence {
            Some(evidence) => format!("Verified in {}", evidence.stage),
            None => "Verified before".into(),
        };
        let _ = write!(body, "</ul><h2>{}</h2><ul>", escape(&heading));
        for line in evidence_lines(request.evidence.as_ref()) {
            let _ = write!(body, "<li>{}</li>", escape(&line));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Votes</h2><ul>");
    for other in request.ballots.iter().filter(|b| b.vote.is_none()) {
        let _ = write!(body, "<li>{}: has not voted</li>", escape(other.approver.as_str()));
    }
    for (who, vote) in request.votes() {
        let _ = write!(body, "<li>{}: {}</li>", escape(who.as_str()), escape(&vote_line(vote)));
    }
    body.push_str("</ul>");
    if let Some(nonce) = form_nonce.filter(|_| request.cancellable_at(now)) {
        let _ = write!(
            body,
            "<form method=\"post\"><input type=\"hidden\" name=\"nonce\" value=\"{nonce}\">\
             <input type=\"hidden\" name=\"action\" value=\"cancel\">\
             <p>The deploy has not started yet. Any approver may still call it off.</p>\
             <p><label><input type=\"checkbox\" name=\"confirm\" value=\"cancel\" id=\"confirm-cancel\" required> \
             Yes, nothing of this release deploys</label></p>\
             <p><button type=\"submit\" id=\"cancel\">Cancel the deploy</button></p></form>",
            nonce = escape(nonce),
        );
    }
    if let Some(nonce) = form_nonce.filter(|_| may_vote(request, ballot, now)) {
        let _ = write!(
            body,
            "<form method=\"post\"><input type=\"hidden\" name=\"nonce\" value=\"{nonce}\">\
             <p><label for=\"comment\">Comment (optional)</label><br>\
             <textarea id=\"comment\" name=\"comment\" maxlength=\"1000\"></textarea></p>\
             <fieldset><legend>Your decision</legend>\
             <label><input type=\"radio\" name=\"verdict\" value=\"approve\" id=\"approve\" required> Approve</label>\
             <label><input type=\"radio\" name=\"verdict\" value=\"reject\" id=\"reject\"> Reject</label></fieldset>\
             <p><button type=\"submit\" id=\"submit\">Record my decision</button></p>\
             </form>",
            nonce = escape(nonce),
        );
    }
    document(status, &format!("Approve {}", request.title()), &body)
}

/// Who asked for the rollback and why, and where each service goes back from and to.
fn rollback_section(body: &mut String, request: &ApprovalRequest, order: &RollbackOrder) {
    let _ = write!(
        body,
        "<h2>The rollback</h2><dl><dt>Asked by</dt><dd id=\"asked-by\">{}</dd>\
         <dt>Asked at</dt><dd>{} UTC</dd><dt>Reason</dt><dd id=\"reason\">{}</dd></dl>\
         <p>No staging check and no wait: this version ran in {} before. Approved, the services \
         go back at once, even in a deploy freeze, without a new snapshot.</p><h2>Services</h2><ul>",
        escape(&order.by),
        utc(order.at),
        escape(&order.reason),
        escape(request.stage.as_str()),
    );
    for (target, service) in order.targets.iter().zip(&request.services) {
        let _ = write!(
            body,
            "<li>{}: from {} back to {} (as under deployment {})</li>",
            escape(target.service.as_str()),
            escape(service.running_now.as_deref().unwrap_or("unknown")),
            escape(&target.task_definition),
            escape(target.target.as_str()),
        );
    }
    body.push_str("</ul>");
}

/// What holds an approved release that has not started deploying: its stage's deploy window or
/// a freeze at the time it is due.
pub fn held(request: &ApprovalRequest, schedule: &DeploySchedule, now: DateTime<Utc>) -> Option<Held> {
    // An operator's rollback is never held.
    let waiting = request.rollback.is_none()
        && request.status_at(now) == ApprovalStatus::Approved
        && request
            .promotion
            .as_ref()
            .is_none_or(|p| p.deploy_started_at.is_none() && p.failed.is_none());
    let due = request.deploy_not_before()?.max(now);
    waiting.then(|| schedule.held(due)).flatten()
}

/// "approved at T UTC", and by whom when an operator cast it with pipectl.
pub fn vote_line(vote: &crate::domain::approval::Vote) -> String {
    let said = format!("{} at {} UTC", vote.verdict.past_tense(), utc(vote.at));
    match &vote.voter.operator {
        Some(operator) => format!("{said} (cast with pipectl by {operator})"),
        None => said,
    }
}

fn may_vote(request: &ApprovalRequest, ballot: &Ballot, now: DateTime<Utc>) -> bool {
    ballot.vote.is_none() && request.status_at(now) == ApprovalStatus::AwaitingApproval
}

/// The request's state in one sentence.
pub fn state_line(request: &ApprovalRequest, now: DateTime<Utc>) -> String {
    let by = |verdict: Verdict| -> String {
        request
            .votes()
            .filter(|(_, vote)| vote.verdict == verdict)
            .map(|(who, vote)| format!("{who} at {} UTC", utc(vote.at)))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match request.status_at(now) {
        ApprovalStatus::AwaitingApproval => {
            let approvals = request.approvals();
            format!(
                "Awaiting approval: {approvals} of {} needed approvals so far.",
                request.approvals_required
            )
        }
        ApprovalStatus::Approved => match &request.promotion {
            Some(promotion) if promotion.failed.is_some() => format!(
                "Approved by {}, but not deployed: {}",
                by(Verdict::Approve),
                promotion.failed.as_deref().unwrap_or_default()
            ),
            Some(promotion) if promotion.deploy_started_at.is_some() => format!(
                "Approved by {}; {} from {} UTC.",
                by(Verdict::Approve),
                if request.rollback.is_some() {
                    "rolled back"
                } else {
                    "deployed"
                },
                promotion.deploy_started_at.map(utc).unwrap_or_default()
            ),
            _ if request.rollback.is_some() => format!("Approved by {}; rolling back now.", by(Verdict::Approve)),
            _ => format!(
                "Approved by {}; deploying at {} UTC at the earliest.",
                by(Verdict::Approve),
                request.deploy_not_before().map(utc).unwrap_or_else(|| "?".into())
            ),
        },
        ApprovalStatus::Rejected => format!("Rejected by {}.", by(Verdict::Reject)),
        ApprovalStatus::Expired => "Expired: nobody decided in time.".into(),
        ApprovalStatus::Superseded => match &request.superseded_by {
            Some(next) => format!("Superseded by release {} (request {}).", next.tag, next.id),
            None => "Superseded by a newer release.".into(),
        },
        ApprovalStatus::Cancelled => match request.cancelled_by() {
            Some((by, at)) => format!("Cancelled by {by} at {} UTC, before the deploy started.", utc(at)),
            None => "Cancelled before the deploy started.".into(),
        },
        ApprovalStatus::Blocked => format!("Blocked: {}", request.blocked.as_deref().unwrap_or("?")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::approval::{ApprovalToken, Voter};

    use crate::domain::fixtures::at;

    fn request() -> (ApprovalRequest, ApprovalToken) {
        let mut request = crate::domain::fixtures::approval_request(1);
        let token = ApprovalToken::from_random([1; 32]);
        let approver = request.ballots[0].approver.clone();
        request.issue_link(&approver, &token);
        (request, token)
    }

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let (request, _) = request();
        let page = request_page(
            &request,
            &request.ballots[0],
            None,
            Some("<b>x</b>"),
            200,
            at(2),
            &DeploySchedule::default(),
        );
        assert!(!page.html.contains("<b>x"), "{}", page.html);
        assert!(page.html.contains("&lt;b&gt;x&lt;/b&gt;"));
        let mut blocked = request.clone();
        blocked.status = ApprovalStatus::Blocked;
        blocked.blocked = Some("<script>alert(1)</script>".into());
        let page = request_page(
            &blocked,
            &blocked.ballots[0],
            None,
            None,
            200,
            at(2),
            &DeploySchedule::default(),
        );
        assert!(!page.html.contains("<script>"), "{}", page.html);
        assert!(page.html.contains("Blocked: &lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_rollback_request_says_who_asked_why_and_where_each_service_goes_back_to() {
        let mut request = crate::domain::fixtures::rollback_request(1);
        request.rollback.as_mut().unwrap().reason = "<b>errors</b> since v7".into();
        let freeze = DeploySchedule {
            window: None,
            freezes: vec![crate::domain::schedule::Freeze {
                from: at(0),
                to: at(50),
                reason: "year-end".into(),
            }],
        };
        let page = request_page(&request, &request.ballots[0], Some("n"), None, 200, at(1), &freeze);
        let html = &page.html;
        assert!(
            html.contains("<h1 id=\"title\">Rollback of backend in prod to latest</h1>"),
            "{html}"
        );
        assert!(html.contains("arn:aws:sts::123456789012:assumed-role/oncall/jane"));
        assert!(html.contains("&lt;b&gt;errors&lt;/b&gt; since v7"), "escaped: {html}");
        assert!(
            html.contains("backend-service: from td:7 back to td:5 (as under deployment dep-5)"),
            "{html}"
        );
        assert!(
            !html.contains("Verified in"),
            "no staging evidence is asked of a rollback"
        );
        assert!(html.contains("id=\"approve\""), "the form");
        let mut approved = request.clone();
        approved.status = ApprovalStatus::Approved;
        approved.decided_at = Some(at(1));
        assert_eq!(held(&approved, &freeze, at(2)), None, "a rollback is never held");
    }

    #[test]
    fn the_form_appears_only_for_an_open_request_and_an_unused_ballot() {
        let (request, token) = request();
        let open = request_page(
            &request,
            &request.ballots[0],
            Some("n0nce"),
            None,
            200,
            at(1),
            &DeploySchedule::default(),
        );
        assert!(open.html.contains("name=\"nonce\" value=\"n0nce\""));
        assert!(open.html.contains("value=\"approve\"") && open.html.contains("value=\"reject\""));
        assert!(!open.html.contains("<script"), "no script at all");

        let approved = request.cast(&token, Verdict::Approve, Voter::default(), at(2)).unwrap();
        let page = request_page(
            &approved,
            &approved.ballots[0],
            Some("n0nce"),
            None,
            200,
            at(3),
            &DeploySchedule::default(),
        );
        assert!(!page.html.contains("name=\"verdict\""), "no vote form once decided");
        assert!(page.html.contains("id=\"cancel\""), "Cancel during the wait");
        assert!(
            page.html
                .contains("Approved by release-manager@example.com at 2026-11-22 10:02:00 UTC")
        );
        assert!(
            page.html
                .contains("deploying at 2026-11-22 10:07:00 UTC at the earliest")
        );

        let late = request_page(
            &request,
            &request.ballots[0],
            Some("n0nce"),
            None,
            200,
            request.expires_at,
            &DeploySchedule::default(),
        );
        assert!(!late.html.contains("<form"));

        // A freeze over the time the deploy is due: the page says until when, and why.
        let frozen = DeploySchedule {
            window: None,
            freezes: vec![crate::domain::schedule::Freeze {
                from: at(0),
                to: at(45),
                reason: "year-end <freeze>".into(),
            }],
        };
        let held = request_page(&approved, &approved.ballots[0], None, None, 200, at(3), &frozen);
        assert!(
            held.html
                .contains("id=\"held\">Held until 2026-11-22 10:45:00 UTC: freeze until 2026-11-22 10:45:00 UTC (year-end &lt;freeze&gt;)"),
            "{}",
            held.html
        );
        let open = request_page(
            &approved,
            &approved.ballots[0],
            None,
            None,
            200,
            at(3),
            &DeploySchedule::default(),
        );
        assert!(!open.html.contains("id=\"held\""));
    }

    #[test]
    fn every_page_carries_the_security_headers() {
        let headers: std::collections::HashMap<_, _> = HEADERS.iter().cloned().collect();
        let csp = &headers["content-security-policy"];
        for part in [
            "script-src 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(not_found().status, 404);
        assert!(!not_found().html.contains("apr-"));
        assert_eq!(gone().status, 410);
    }
}
