//! The approval page in a real browser: Debian's headless Chromium, driven over WebDriver by
//! chromedriver, opens the link from the approver's message and clicks. Screenshots land in
//! target/screenshots/.

use crate::approval::Loop;
use crate::support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::approval::ApprovalStatus;
use shared::ports::Approvals;
use std::time::Duration;
use tokio::process::{Child, Command};

/// chromedriver on a free port, stopped when dropped.
struct Chromedriver {
    _process: Child,
    url: String,
}

impl Chromedriver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver is installed (scripts/setup-tools.sh installs it)");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Chromedriver { _process: process, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not listen on {port}");
    }

    async fn browser(&self) -> Client {
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,1800"],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = harness::repo_root().join("target").join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn click(browser: &Client, id: &str) {
    browser.find(Locator::Id(id)).await.unwrap().click().await.unwrap();
}

/// The text of the element `id`, once the page showing it has loaded.
async fn text(browser: &Client, id: &str) -> String {
    let element = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id} on the page: {e}"));
    element.text().await.unwrap()
}

#[tokio::test]
async fn an_approver_approves_in_a_real_browser_and_a_second_click_changes_nothing() {
    let run = Loop::start().await;
    run.release("v3.0.0", 0x30, 0).await;
    let links = run.links().await;
    let (approver, _, link) = links.iter().find(|(a, _, _)| a.starts_with("release-manager")).unwrap();

    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;
    browser.goto(link).await.unwrap();
    assert_eq!(
        text(&browser, "digest").await,
        digest(0x30),
        "the page shows what ships"
    );
    assert_eq!(&text(&browser, "your-ballot").await, approver);
    // The same page open in a second tab, as a person who clicks twice would have it.
    let first_tab = browser.window().await.unwrap();
    let second_tab = browser.new_window(true).await.unwrap().handle;
    browser.switch_to_window(second_tab.clone()).await.unwrap();
    browser.goto(link).await.unwrap();
    browser.switch_to_window(first_tab).await.unwrap();
    screenshot(&browser, "approval-page.png").await;

    browser
        .find(Locator::Id("comment"))
        .await
        .unwrap()
        .send_keys("staging is green")
        .await
        .unwrap();
    click(&browser, "approve").await;
    click(&browser, "submit").await;
    assert_eq!(text(&browser, "notice").await, "Recorded: you approved this release.");
    assert!(
        text(&browser, "state")
            .await
            .starts_with("Approved by release-manager@example.com")
    );
    screenshot(&browser, "approval-page-approved.png").await;
    let approved = run.request(link).await;
    assert_eq!(approved.status, ApprovalStatus::Approved);
    let vote = approved.votes().next().unwrap().1.clone();
    assert_eq!(vote.voter.comment, "staging is green");
    assert!(vote.voter.user_agent.contains("Chrome"), "{}", vote.voter.user_agent);

    browser.switch_to_window(second_tab).await.unwrap();
    click(&browser, "approve").await;
    click(&browser, "submit").await;
    assert!(text(&browser, "notice").await.starts_with("Already decided"));
    assert_eq!(run.request(link).await.votes().count(), 1);

    // A link whose request expired: a plain 410 page that reveals nothing of the release.
    run.release("v3.1.0", 0x31, 20).await;
    let expiring = run.links().await.remove(0).2;
    let records = DynamoRecords::new(&run.env.config, &run.env.world.table);
    let mut request = run.request(&expiring).await;
    request.expires_at = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    request.version += 1;
    assert!(records.save_approval(&request).await.unwrap());
    browser.goto(&expiring).await.unwrap();
    let page = browser.source().await.unwrap();
    assert!(page.contains("This link has expired"), "{page}");
    assert!(!page.contains("v3.1.0") && !page.contains(&digest(0x31)));
    screenshot(&browser, "approval-page-expired.png").await;
    browser.close().await.unwrap();
}
