/* The run page's "Moral rewards" panel (runs/_rewards.html) when the run finishes live: the page
 * drew it hidden and empty, and the rewards are stored with the run's per-group scores just after
 * its outcome event (runs.services.run_finish), so they are read from GET /api/v1/runs/<id>/rewards
 * once the outcome has arrived, as the "What if" panel reads its re-tally. A page loaded after the
 * finish has them from the server already. All data is set as text. */
import { $, el, clear, fetchWhenFinished, formatNumber } from "./dom.js";

export async function showRewards(page, groupLabel) {
  const panel = $("#rewards-panel");
  const rows = $("#rewards-rows");
  if (!panel || !rows || rows.querySelector("tr")) return; // not on this page, or drawn by the server
  const query = page.token ? `?${new URLSearchParams({ token: page.token })}` : "";
  let answer;
  try {
    const response = await fetchWhenFinished(`/api/v1/runs/${page.run.id}/rewards${query}`);
    if (!response.ok) return;
    answer = await response.json();
  } catch (error) {
    return; // the page's next load shows them
  }
  if (!answer.rewards.length) return;
  clear(rows);
  for (const row of answer.rewards) {
    rows.append(el("tr", { dataset: { group: row.group } },
      el("td", {}, groupLabel(row.group)),
      el("td", { class: "num" }, formatNumber(row.deontological, 0)),
      el("td", { class: "num" }, formatNumber(row.utilitarian, 2))));
  }
  panel.hidden = false;
}
