//! approval-page: the page an approver's link opens, on a Lambda function URL.
//!
//! GET and HEAD only read (one GetItem) and never decide: mail scanners and link previews
//! fetch links. A decision takes a POST from the page's form, carrying the nonce that page
//! was issued; it is one conditional write from the version read, so a double click, a replay
//! or two approvers at once cannot count twice or overwrite each other.

use crate::domain::approval::{
    ApprovalId, ApprovalRequest, ApprovalStatus, ApprovalToken, Refusal, Verdict, Voter, issue_nonce, nonce_is_valid,
};
use crate::domain::approval_page::{
    Page, gone, method_not_allowed, no_decision, no_longer_approver, not_found, request_page, stale_form, unavailable,
    unconfirmed_cancel,
};
use crate::domain::pipeline::Pipeline;
use crate::domain::schedule::DeploySchedule;
use crate::ports::{Approvals, Change, update_decision};
use chrono::{DateTime, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// What the page needs of an HTTP request.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub method: Method,
    pub path: String,
    /// The decoded form fields of a POST.
    pub form: Vec<(String, String)>,
    pub source_ip: String,
    pub user_agent: String,
}

pub struct ApprovalPage<S> {
    /// Who may still vote: an approver taken off the stage's list since the request was made
    /// no longer can.
    pub pipeline: Pipeline,
    pub records: S,
}

/// `/a/<id>/<token>`, or nothing: anything else is a 404 without a read.
fn parse_path(path: &str) -> Option<(ApprovalId, ApprovalToken)> {
    let rest = path.strip_prefix("/a/")?;
    let (id, token) = rest.split_once('/')?;
    Some((
        ApprovalId::parse(id)?,
        ApprovalToken::parse(token.trim_end_matches('/'))?,
    ))
}

impl<S: Approvals> ApprovalPage<S> {
    pub async fn respond(&self, request: &PageRequest, now: DateTime<Utc>) -> Page {
        let Some((id, token)) = parse_path(&request.path) else {
            return not_found();
        };
        match request.method {
            Method::Get | Method::Head => self.show(&id, &token, now).await,
            Method::Post => self.decide(&id, &token, request, now).await,
            Method::Other => method_not_allowed(),
        }
    }

    /// The request as the link's ballot sees it, or the page that says why not.
    async fn read(&self, id: &ApprovalId, token: &ApprovalToken) -> Result<ApprovalRequest, Page> {
        match self.records.get_approval(id).await {
            Ok(Some(request)) if request.ballot(&token.hash()).is_some() => Ok(request),
            Ok(_) => {
                tracing::info!(approval = %id, token = token.hash().prefix(), "unknown link");
                Err(not_found())
            }
            Err(err) => {
                tracing::error!(approval = %id, error = %err, "approval request unreadable");
                Err(unavailable())
            }
        }
    }

    /// The deploy window and freezes of the request's stage, as the file in force says.
    fn schedule_of(&self, request: &ApprovalRequest) -> &DeploySchedule {
        static NONE: DeploySchedule = DeploySchedule {
            window: None,
            freezes: Vec::new(),
        };
        self.pipeline.stage(&request.stage).map_or(&NONE, |s| &s.schedule)
    }

    async fn show(&self, id: &ApprovalId, token: &ApprovalToken, now: DateTime<Utc>) -> Page {
        let request = match self.read(id, token).await {
            Ok(request) => request,
            Err(page) => return page,
        };
        if request.status_at(now) == ApprovalStatus::Expired {
            return gone();
        }
        let ballot = request.ballot(&token.hash()).expect("read() found it");
        let nonce = issue_nonce(token, id, now);
        request_page(
            &request,
            ballot,
            Some(&nonce),
            None,
            200,
            now,
            self.schedule_of(&request),
        )
    }

    async fn decide(&self, id: &ApprovalId, token: &ApprovalToken, http: &PageRequest, now: DateTime<Utc>) -> Page {
        let field = |name: &str| http.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let hash = token.hash();
        if !field("nonce").is_some_and(|nonce| nonce_is_valid(token, id, nonce, now)) {
            tracing::warn!(approval = %id, token = hash.prefix(), source_ip = %http.source_ip, user_agent = %http.user_agent, "POST without this page's nonce: nothing decided");
            return stale_form();
        }
        if field("action") == Some("cancel") {
            // Like a vote, a cancel takes a choice a form-submitting scanner does not make.
            if field("confirm") != Some("cancel") {
                return unconfirmed_cancel();
            }
            return self.cancel(id, token, http, now).await;
        }
        let Some(verdict) = field("verdict").and_then(Verdict::parse) else {
            return no_decision();
        };
        let voter = Voter {
            source_ip: http.source_ip.clone(),
            user_agent: http.user_agent.clone(),
            comment: field("comment").unwrap_or_default().trim().to_owned(),
            operator: None,
        };
        let cast = update_decision(&self.records, id, "a vote was cast", |request| {
            let Some(ballot) = request.ballot(&hash).cloned() else {
                return Change::Leave(Err(not_found()));
            };
            if !self.pipeline.lists_approver(&request.stage, &ballot.approver) {
                tracing::warn!(approval = %id, approver = %ballot.approver, "approver no longer listed: nothing decided");
                return Change::Leave(Err(no_longer_approver()));
            }
            match request.cast(token, verdict, voter.clone(), now) {
                Ok(next) => {
                    *request = next;
                    Change::Write(Ok(ballot))
                }
                Err(Refusal::Expired) => Change::Leave(Err(gone())),
                Err(Refusal::UnknownLink) => Change::Leave(Err(not_found())),
                Err(refusal) => {
                    tracing::info!(approval = %id, approver = %ballot.approver, %refusal, "vote not counted");
                    let notice = format!("Already decided: {refusal}. Nothing changed.");
                    Change::Leave(Err(request_page(request, &ballot, None, Some(&notice), 409, now, self.schedule_of(request))))
                }
            }
        })
        .await;
        match cast {
            Ok(Some((next, Ok(ballot)))) => {
                tracing::info!(
                    approval = %id, approver = %ballot.approver, verdict = verdict.past_tense(),
                    status = %next.status, token = hash.prefix(), source_ip = %http.source_ip,
                    "vote recorded"
                );
                let notice = format!("Recorded: you {} this release.", verdict.past_tense());
                request_page(&next, &ballot, None, Some(&notice), 200, now, self.schedule_of(&next))
            }
            Ok(Some((_, Err(page)))) => page,
            Ok(None) => not_found(),
            Err(err) => {
                tracing::error!(approval = %id, error = %err, "vote not saved");
                unavailable()
            }
        }
    }

    /// A link's holder calls the approved release off during the wait (the nonce checked).
    async fn cancel(&self, id: &ApprovalId, token: &ApprovalToken, http: &PageRequest, now: DateTime<Utc>) -> Page {
        let hash = token.hash();
        let voter = Voter {
            source_ip: http.source_ip.clone(),
            user_agent: http.user_agent.clone(),
            comment: String::new(),
            operator: None,
        };
        let cancelled = update_decision(&self.records, id, "it was cancelled", |request| {
            let Some(ballot) = request.ballot(&hash).cloned() else {
                return Change::Leave(Err(not_found()));
            };
            if !self.pipeline.lists_approver(&request.stage, &ballot.approver) {
                return Change::Leave(Err(no_longer_approver()));
            }
            match request.cancel(&hash, voter.clone(), now) {
                Ok(next) => {
                    *request = next;
                    Change::Write(Ok(ballot))
                }
                Err(refusal) => {
                    let notice = format!("Nothing changed: {refusal}.");
                    Change::Leave(Err(request_page(
                        request,
                        &ballot,
                        None,
                        Some(&notice),
                        409,
                        now,
                        self.schedule_of(request),
                    )))
                }
            }
        })
        .await;
        match cancelled {
            Ok(Some((next, Ok(ballot)))) => {
                tracing::info!(approval = %id, approver = %ballot.approver, source_ip = %http.source_ip, "release cancelled");
                request_page(
                    &next,
                    &ballot,
                    None,
                    Some("Cancelled: nothing will be deployed."),
                    200,
                    now,
                    self.schedule_of(&next),
                )
            }
            Ok(Some((_, Err(page)))) => page,
            Ok(None) => not_found(),
            Err(err) => {
                tracing::error!(approval = %id, error = %err, "cancel not saved");
                unavailable()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::fixtures::{approval_request, at, fixture_pipeline};
    use crate::fakes::MemoryRecords;

    struct Case {
        page: ApprovalPage<MemoryRecords>,
        records: MemoryRecords,
        id: ApprovalId,
        tokens: Vec<ApprovalToken>,
    }

    async fn case(required: usize) -> Case {
        let pipeline = fixture_pipeline();
        let mut request = approval_request(required);
        let approvers: Vec<_> = request.ballots.iter().map(|b| b.approver.clone()).collect();
        let tokens: Vec<_> = (0..approvers.len())
            .map(|n| ApprovalToken::from_random([n as u8 + 1; 32]))
            .collect();
        for (approver, token) in approvers.iter().zip(&tokens) {
            request.issue_link(approver, token);
        }
        let records = MemoryRecords::default();
        use crate::ports::Approvals;
        records.create_approval(&request).await.unwrap();
        Case {
            page: ApprovalPage {
                pipeline,
                records: records.clone(),
            },
            records,
            id: request.id,
            tokens,
        }
    }

    fn get(path: &str, user_agent: &str) -> PageRequest {
        PageRequest {
            method: Method::Get,
            path: path.into(),
            form: Vec::new(),
            source_ip: "198.51.100.7".into(),
            user_agent: user_agent.into(),
        }
    }

    fn post(path: &str, form: &[(&str, &str)]) -> PageRequest {
        PageRequest {
            method: Method::Post,
            form: form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..get(path, "Mozilla/5.0")
        }
    }

    impl Case {
        fn path(&self, n: usize) -> String {
            format!("/a/{}/{}", self.id, self.tokens[n].as_str())
        }

        fn nonce(&self, n: usize, at: DateTime<Utc>) -> String {
            issue_nonce(&self.tokens[n], &self.id, at)
        }

        fn status(&self) -> (ApprovalStatus, usize) {
            let request = &self.records.approvals()[0];
            (
                request.status,
                request.ballots.iter().filter(|b| b.vote.is_some()).count(),
            )
        }
    }

    #[tokio::test]
    async fn scanners_and_previews_decide_nothing() {
        let case = case(1).await;
        for agent in [
            "Mozilla/5.0 (compatible; Microsoft Office SafeLinks)",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Mozilla/5.0 (compatible; BingPreview/1.0b)",
        ] {
            for method in [Method::Get, Method::Head] {
                let page = case
                    .page
                    .respond(
                        &PageRequest {
                            method,
                            ..get(&case.path(0), agent)
                        },
                        at(1),
                    )
                    .await;
                assert_eq!(page.status, 200);
            }
        }
        let without_nonce = case
            .page
            .respond(&post(&case.path(0), &[("verdict", "approve")]), at(1))
            .await;
        assert_eq!(without_nonce.status, 403);
        let other_page = case.nonce(1, at(1));
        let with_other = post(&case.path(0), &[("verdict", "approve"), ("nonce", &other_page)]);
        assert_eq!(case.page.respond(&with_other, at(1)).await.status, 403);
        // A scanner pressing the page's button without choosing: nothing decided.
        let no_choice = post(&case.path(0), &[("nonce", &case.nonce(0, at(1)))]);
        assert_eq!(case.page.respond(&no_choice, at(1)).await.status, 400);
        assert_eq!(case.status(), (ApprovalStatus::AwaitingApproval, 0));
    }

    #[tokio::test]
    async fn a_post_from_the_page_decides_once_and_replays_change_nothing() {
        let case = case(1).await;
        let page = case.page.respond(&get(&case.path(0), "Mozilla/5.0"), at(1)).await;
        let nonce = page
            .html
            .split("name=\"nonce\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let click = post(
            &case.path(0),
            &[("verdict", "approve"), ("nonce", &nonce), ("comment", " ok ")],
        );
        let decided = case.page.respond(&click, at(2)).await;
        assert_eq!(decided.status, 200);
        assert!(decided.html.contains("Recorded: you approved this release."));
        assert_eq!(case.status(), (ApprovalStatus::Approved, 1));
        let vote = case.records.approvals()[0].ballots[0].vote.clone().unwrap();
        assert_eq!(
            (vote.voter.comment.as_str(), vote.voter.source_ip.as_str()),
            ("ok", "198.51.100.7")
        );

        let again = case.page.respond(&click, at(2)).await;
        assert_eq!(again.status, 409);
        assert!(again.html.contains("Already decided"), "{}", again.html);
        // The other approver's link now shows the decision, with no form.
        let other = case.page.respond(&get(&case.path(1), "Mozilla/5.0"), at(3)).await;
        assert!(other.html.contains("Approved by") && !other.html.contains("name=\"verdict\""));
        let late = post(
            &case.path(1),
            &[("verdict", "reject"), ("nonce", &case.nonce(1, at(3)))],
        );
        assert_eq!(case.page.respond(&late, at(3)).await.status, 409);
        assert_eq!(case.status(), (ApprovalStatus::Approved, 1));
    }

    #[tokio::test]
    async fn forged_unknown_and_expired_links_reveal_nothing() {
        let case = case(1).await;
        let forged = format!("/a/{}/{}", case.id, ApprovalToken::from_random([9; 32]).as_str());
        let unknown = format!("/a/apr-000000000000000000000000/{}", case.tokens[0].as_str());
        for path in [
            forged.as_str(),
            unknown.as_str(),
            "/",
            "/a/",
            "/a/x/y",
            &format!("/a/{}", case.id),
        ] {
            let page = case.page.respond(&get(path, "curl"), at(1)).await;
            assert_eq!(page.status, 404, "{path}");
            assert!(!page.html.contains("backend"), "{path}");
        }
        let expires = case.records.approvals()[0].expires_at;
        let late = case.page.respond(&get(&case.path(0), "Mozilla/5.0"), expires).await;
        assert_eq!(late.status, 410);
        let click = post(
            &case.path(0),
            &[("verdict", "approve"), ("nonce", &case.nonce(0, expires))],
        );
        assert_eq!(case.page.respond(&click, expires).await.status, 410);
        assert_eq!(case.status(), (ApprovalStatus::AwaitingApproval, 0));
    }

    #[tokio::test]
    async fn two_approvers_approve_and_one_link_cannot_vote_twice() {
        let case = case(2).await;
        let vote = |n: usize, verdict: &'static str| {
            let nonce = case.nonce(n, at(1));
            let path = case.path(n);
            let page = &case.page;
            async move {
                page.respond(&post(&path, &[("verdict", verdict), ("nonce", &nonce)]), at(2))
                    .await
            }
        };
        assert_eq!(vote(0, "approve").await.status, 200);
        assert_eq!(vote(0, "approve").await.status, 409);
        assert_eq!(case.status(), (ApprovalStatus::AwaitingApproval, 1));
        assert_eq!(vote(1, "approve").await.status, 200);
        assert_eq!(case.status(), (ApprovalStatus::Approved, 2));
    }

    #[tokio::test]
    async fn an_approver_taken_off_the_list_can_no_longer_vote() {
        let mut case = case(1).await;
        let text =
            include_str!("../../../tests/fixtures/three-stages.toml").replace("\"release-manager@example.com\", ", "");
        case.page.pipeline = Pipeline::parse(&text).unwrap();
        let click = post(
            &case.path(0),
            &[("verdict", "approve"), ("nonce", &case.nonce(0, at(1)))],
        );
        assert_eq!(case.page.respond(&click, at(1)).await.status, 403);
        assert_eq!(case.status(), (ApprovalStatus::AwaitingApproval, 0));
    }

    #[tokio::test]
    async fn an_approver_can_cancel_during_the_wait_and_not_after() {
        let early = case(1).await;
        let approve = post(
            &early.path(0),
            &[("verdict", "approve"), ("nonce", &early.nonce(0, at(1)))],
        );
        assert_eq!(early.page.respond(&approve, at(1)).await.status, 200);
        // The other approver's page offers Cancel during the 5-minute wait.
        let page = early.page.respond(&get(&early.path(1), "Mozilla/5.0"), at(2)).await;
        assert!(page.html.contains("id=\"cancel\""), "{}", page.html);
        let unticked = post(
            &early.path(1),
            &[("action", "cancel"), ("nonce", &early.nonce(1, at(2)))],
        );
        assert_eq!(
            early.page.respond(&unticked, at(2)).await.status,
            400,
            "a scanner submitting the form as served cancels nothing"
        );
        assert_eq!(early.status().0, ApprovalStatus::Approved);
        let cancel = post(
            &early.path(1),
            &[
                ("action", "cancel"),
                ("confirm", "cancel"),
                ("nonce", &early.nonce(1, at(2))),
            ],
        );
        let cancelled = early.page.respond(&cancel, at(2)).await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.html);
        assert!(
            cancelled.html.contains("Cancelled by oncall-lead@example.com"),
            "{}",
            cancelled.html
        );
        assert_eq!(early.status().0, ApprovalStatus::Cancelled);
        assert_eq!(early.page.respond(&cancel, at(2)).await.status, 409, "once");

        let late = case(1).await;
        let approve = post(
            &late.path(0),
            &[("verdict", "approve"), ("nonce", &late.nonce(0, at(1)))],
        );
        late.page.respond(&approve, at(1)).await;
        let page = late.page.respond(&get(&late.path(0), "Mozilla/5.0"), at(6)).await;
        assert!(!page.html.contains("id=\"cancel\""), "the wait is over");
        let cancel = post(
            &late.path(0),
            &[
                ("action", "cancel"),
                ("confirm", "cancel"),
                ("nonce", &late.nonce(0, at(6))),
            ],
        );
        assert_eq!(late.page.respond(&cancel, at(6)).await.status, 409);
        assert_eq!(late.status().0, ApprovalStatus::Approved);
        // A scanner's GET during the wait cancels nothing either.
        let fresh = case(1).await;
        fresh
            .page
            .respond(
                &post(
                    &fresh.path(0),
                    &[("verdict", "approve"), ("nonce", &fresh.nonce(0, at(1)))],
                ),
                at(1),
            )
            .await;
        fresh
            .page
            .respond(&get(&fresh.path(0), "Slackbot-LinkExpanding 1.0"), at(2))
            .await;
        assert_eq!(fresh.status().0, ApprovalStatus::Approved);
    }
}
