//! `GET /`: the operations page, rendered on the server; a few lines of script send
//! the buttons' `POST`s and reload the page.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::response::{Html, IntoResponse, Response};

use crate::http::api::{letter_page, LetterFilter, OpsError};
use crate::http::state::{rfc3339, Ops, Stage, Tracked};
use crate::runtime::{DeliveryStatus, ProjectionStatus};
use crate::store::FailedDelivery;
use crate::store::Scheduled;

/// Dead letters the page lists (the API pages through the rest).
const PAGE_LETTERS: usize = 100;
/// Scheduled commands the page lists.
const PAGE_SCHEDULED: usize = 100;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5rem}th,td{border:1px solid #ccc;padding:.3rem .6rem;\
text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}\
.bad{color:#a00;font-weight:bold}.ok{color:#070}#note{color:#a00}pre{margin:0;white-space:pre-wrap}";

/// Sends a button's `POST` (to its `data-post` path, under the page's base) and
/// reloads; shows the error otherwise. Reloads every 2 s while a rebuild runs.
const SCRIPT: &str = r#"
document.addEventListener('click', async function (event) {
  const button = event.target.closest('button[data-post]');
  if (!button) return;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const note = document.getElementById('note');
  button.disabled = true;
  try {
    const response = await fetch(document.body.dataset.base + button.dataset.post, { method: 'POST' });
    if (!response.ok) {
      const body = await response.json().catch(function () { return { message: response.statusText }; });
      note.textContent = response.status + ': ' + body.message;
      button.disabled = false;
      return;
    }
    location.reload();
  } catch (error) {
    note.textContent = String(error);
    button.disabled = false;
  }
});
if (document.querySelector('[data-running]')) setTimeout(function () { location.reload(); }, 2000);
"#;

/// The page: delivery status and each handler's, projections and their rebuilds, the
/// dead letters with their buttons.
pub(super) async fn page(State(ops): State<Arc<Ops>>, OriginalUri(uri): OriginalUri) -> Response {
    match render(&ops, uri.path()).await {
        Ok(html) => Html(html).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn render(ops: &Ops, path: &str) -> Result<String, OpsError> {
    let delivery = ops.domain.delivery_status().await?;
    let projections = ops.domain.projection_statuses().await?;
    let filter = LetterFilter { limit: Some(PAGE_LETTERS), ..LetterFilter::default() };
    let letters = letter_page(ops, filter).await?;
    let scheduled = ops.domain.scheduled_commands(PAGE_SCHEDULED).await?;
    let rebuilds = ops.rebuilds();
    let base = if path.ends_with('/') { path.to_owned() } else { format!("{path}/") };

    let mut html = String::with_capacity(8_192);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Operations</title>");
    let _ = write!(html, "<style>{STYLE}</style></head>\n<body data-base=\"{}\">", escape(&base));
    html.push_str("<h1>Operations</h1><p id=\"note\" role=\"alert\"></p>");
    summary(&mut html, ops, &delivery);
    handlers(&mut html, &delivery);
    html.push_str("<h2>Projections</h2>");
    projection_table(&mut html, ops, &projections, |name| rebuilds.get(name));
    let _ = write!(html, "<h2>Dead letters ({})</h2>", delivery.dead);
    letter_table(&mut html, ops, &letters.letters);
    if letters.next_offset.is_some() {
        let _ =
            write!(html, "<p>The first {PAGE_LETTERS} are shown; <code>api/dead-letters</code> pages through all.</p>");
    }
    let _ = write!(
        html,
        "<h2>Scheduled commands ({} pending, {} due)</h2>",
        delivery.scheduled.pending, delivery.scheduled.due
    );
    scheduled_table(&mut html, ops, &scheduled);
    let _ = writeln!(html, "<script>{SCRIPT}</script></body></html>");
    Ok(html)
}

fn summary(html: &mut String, ops: &Ops, delivery: &DeliveryStatus) {
    let lag = delivery.lag.as_secs_f64();
    let (class, word) = if delivery.lag > ops.max_lag { ("bad", "not ready") } else { ("ok", "ready") };
    let _ = write!(
        html,
        "<p id=\"summary\"><span class=\"{class}\">{word}</span>: delivery lag <span id=\"lag\">{lag:.3}</span> s \
         (bound {} s), {} undelivered, {} retrying, {} dead, {} held; {} worker set(s) alive</p>",
        ops.max_lag.as_secs_f64(),
        delivery.undelivered,
        delivery.retrying,
        delivery.dead,
        delivery.held,
        delivery.workers.len()
    );
}

fn handlers(html: &mut String, delivery: &DeliveryStatus) {
    html.push_str("<h2>Handlers</h2><table id=\"handlers\"><thead><tr><th>handler</th><th>delivered</th>");
    html.push_str("<th>retrying</th><th>dead</th><th>held</th></tr></thead><tbody>");
    for h in &delivery.handlers {
        let bad = if h.dead + h.held > 0 { " class=\"bad\"" } else { "" };
        let _ = write!(
            html,
            "<tr class=\"handler\" data-handler=\"{name}\"><td>{name}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\"><span{bad}>{}</span></td><td class=\"n\">{}</td></tr>",
            h.delivered,
            h.retrying,
            h.dead,
            h.held,
            name = escape(&h.handler)
        );
    }
    html.push_str("</tbody></table>");
}

fn projection_table<'a>(
    html: &mut String,
    ops: &Ops,
    projections: &[ProjectionStatus],
    rebuild_of: impl Fn(&str) -> Option<&'a Tracked>,
) {
    html.push_str("<table id=\"projections\"><thead><tr><th>projection</th><th>version</th><th>checkpoint</th>");
    html.push_str("<th>events behind</th><th>rebuild</th></tr></thead><tbody>");
    if projections.is_empty() {
        html.push_str("<tr><td colspan=\"5\">This domain has no projections.</td></tr>");
    }
    for p in projections {
        let name = escape(p.projection);
        let version = if p.version == p.declared_version {
            p.version.to_string()
        } else {
            format!("{} (code: {})", p.version, p.declared_version)
        };
        let tracked = rebuild_of(p.projection);
        let running = if tracked.is_some_and(Tracked::running) { " data-running=\"true\"" } else { "" };
        let _ = write!(
            html,
            "<tr class=\"projection\" data-projection=\"{name}\"{running}><td>{name}</td><td>{version}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"rebuild\">",
            p.checkpoint, p.lag
        );
        match tracked {
            Some(tracked) => rebuild_cell(html, tracked),
            None => match &p.build {
                Some(build) => {
                    let _ = write!(html, "another builder: v{} at position {}", build.version, build.position);
                }
                None => html.push('-'),
            },
        }
        if !ops.read_only {
            let path = escape(&format!("api/projections/{}/rebuild", encode(p.projection)));
            let _ = if tracked.is_some_and(Tracked::running) {
                write!(html, " <button class=\"cancel-rebuild\" data-post=\"{path}/cancel\">Cancel</button>")
            } else {
                write!(html, " <button class=\"rebuild\" data-post=\"{path}\">Rebuild</button>")
            };
        }
        html.push_str("</td></tr>");
    }
    html.push_str("</tbody></table>");
}

fn rebuild_cell(html: &mut String, tracked: &Tracked) {
    let _ = match &tracked.stage {
        Stage::Running(None) => write!(html, "starting (since {})", rfc3339(tracked.started_at)),
        Stage::Running(Some(p)) => {
            let percent = if p.total == 0 { 100.0 } else { p.done as f64 * 100.0 / p.total as f64 };
            let eta = p.eta().map_or("?".to_owned(), |eta| format!("{:.0} s", eta.as_secs_f64()));
            write!(
                html,
                "<progress value=\"{}\" max=\"{}\"></progress> {}/{} ({percent:.0}%), {:.0} events/s, ETA {eta}",
                p.done,
                p.total.max(1),
                p.done,
                p.total,
                p.rate
            )
        }
        Stage::Switched(r) => {
            write!(html, "switched to copy {} ({} events in {:.1} s)", r.generation, r.events, r.elapsed.as_secs_f64())
        }
        Stage::Cancelled(p) => {
            write!(html, "cancelled after {} of {} events; the old copy serves reads", p.done, p.total)
        }
        Stage::Busy => write!(html, "another builder was at work; this rebuild did nothing"),
        Stage::Failed(error) => write!(html, "<span class=\"bad\">failed: {}</span>", escape(error)),
    };
}

fn letter_table(html: &mut String, ops: &Ops, letters: &[FailedDelivery]) {
    if letters.is_empty() {
        html.push_str("<p id=\"no-dead-letters\">No dead letters.</p>");
        return;
    }
    html.push_str("<table id=\"dead-letters\"><thead><tr><th>handler</th><th>event</th><th>stream</th>");
    html.push_str("<th>attempts</th><th>last error</th><th>last failed</th>");
    if !ops.read_only {
        html.push_str("<th></th>");
    }
    html.push_str("</tr></thead><tbody>");
    for letter in letters {
        let handler = escape(&letter.handler);
        let id = letter.event.id;
        let _ = write!(
            html,
            "<tr class=\"dead-letter\" data-handler=\"{handler}\" data-event-id=\"{id}\"><td>{handler}</td>\
             <td>{} v{}<br><small>{id}</small></td><td>{} #{}</td><td class=\"n\">{}</td>\
             <td><pre>{}</pre></td><td>{}</td>",
            escape(&letter.event.type_name),
            letter.event.version,
            escape(&letter.event.stream.to_string()),
            letter.event.sequence,
            letter.attempts,
            escape(&letter.last_error),
            rfc3339(letter.last_failed_at)
        );
        if !ops.read_only {
            let path = escape(&format!("api/dead-letters/{}/{id}", encode(&letter.handler)));
            let _ = write!(
                html,
                "<td><button class=\"redeliver\" data-post=\"{path}/redeliver\">Redeliver</button> \
                 <button class=\"discard\" data-post=\"{path}/discard\" \
                 data-confirm=\"Discard this dead letter? Its handler will never get the event.\">Discard</button></td>"
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
}

fn scheduled_table(html: &mut String, ops: &Ops, scheduled: &[Scheduled]) {
    if scheduled.is_empty() {
        html.push_str("<p id=\"no-scheduled\">No scheduled commands.</p>");
        return;
    }
    html.push_str("<table id=\"scheduled\"><thead><tr><th>due</th><th>command</th><th>sent by</th><th>deadline</th>");
    if !ops.read_only {
        html.push_str("<th></th>");
    }
    html.push_str("</tr></thead><tbody>");
    for command in scheduled {
        let _ = write!(
            html,
            "<tr class=\"scheduled\" data-id=\"{id}\"><td>{}</td><td>{}<br><small>{id}</small></td><td>{} {}</td><td>{}</td>",
            rfc3339(command.due_at),
            escape(&command.type_name),
            escape(&command.owner),
            escape(&command.owner_key),
            command.name.as_deref().map_or("-".to_owned(), escape),
            id = command.id
        );
        if !ops.read_only {
            let _ = write!(
                html,
                "<td><button class=\"cancel-scheduled\" data-post=\"api/scheduled/{}/cancel\" \
                 data-confirm=\"Cancel this command? It will never be processed.\">Cancel</button></td>",
                command.id
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
}

/// `text` safe in HTML text and in a quoted attribute.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one path segment: every byte but the unreserved ones and `:` percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{encode, escape};

    #[test]
    fn user_text_is_escaped_and_path_segments_encoded() {
        assert_eq!(escape("<b a='1'>\"x\" & y</b>"), "&lt;b a=&#39;1&#39;&gt;&quot;x&quot; &amp; y&lt;/b&gt;");
        assert_eq!(encode("Audit::record"), "Audit::record");
        assert_eq!(encode("a/b c?é"), "a%2Fb%20c%3F%C3%A9");
    }
}
