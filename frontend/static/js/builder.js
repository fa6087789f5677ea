/* The scenario builder. The page is a plain HTML form that posts to the server (which validates
 * everything); this script adds the record picker, the stances table with group checkboxes, the
 * custom seat inputs with their running sum, the live hemicycle preview, the chosen strategy's
 * parameters (the server renders every strategy's; this shows one) and its estimated model steps. */
import { $, el, clear, groupChip, formatNumber, readJson } from "./dom.js";
import * as Hemicycle from "./hemicycle.js";

const builderForm = $("#builder");
if (builderForm) builderPage(builderForm);

function builderPage(form) {
  const inputs = {
    record: $("#id_record"),
    modeHand: $("#mode-hand"),
    modeDivided: $("#mode-divided"),
    mostDivided: $("#id_most_divided"),
    structure: $("#id_seat_structure"),
    seed: $("#id_seed"),
    goal: $("#id_goal"),
    veto: $("#id_veto_group"),
    strategy: $("#id_strategy"),
    judge: $("#id_judge"),
    model: $("#id_model"),
    name: $("#id_name"),
  };
  const filters = { q: $("#filter-q"), topic: $("#filter-topic"), term: $("#filter-term"), set: $("#filter-set") };
  const RESULT_LIMIT = 200; // the API answers at most this many records

  // Everything the builder knows, in one place.
  const state = {
    record: null, // /api/records/<id>/ of the chosen record
    pendingGroups: null, // groups to tick once the record's stances arrive (a reloaded form, a saved scenario)
    custom: {}, // group code -> percent
    previewGroups: [], // the participants of the last preview (the server's choice in "most divided" mode)
    customRowsFor: "",
    vetoValue: inputs.veto ? inputs.veto.value : "",
    requests: { records: 0, detail: 0, preview: 0, power: 0, estimate: 0 },
    previewSeats: null, // the last preview's seat shares, for the power indices
  };

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = { error: `the server answered ${response.status}` };
    }
    return { ok: response.ok, status: response.status, body };
  }

  // ---- record picker ---------------------------------------------------------------------

  async function loadRecords() {
    const ticket = ++state.requests.records;
    const params = new URLSearchParams();
    if (filters.q.value.trim()) params.set("q", filters.q.value.trim());
    if (filters.topic.value) params.set("topic", filters.topic.value);
    if (filters.term.value) params.set("term", filters.term.value);
    if (filters.set.value) params.set("record_set", filters.set.value);
    $("#record-count").textContent = "Searching…";
    const { ok, body } = await getJson(`/api/records/?${params}`);
    if (ticket !== state.requests.records) return;
    const list = clear($("#record-results"));
    if (!ok) {
      $("#record-count").textContent = body.error || "The records could not be loaded.";
      return;
    }
    const records = body.records || [];
    $("#record-count").textContent =
      records.length === 0 ? "No record matches these filters."
        : records.length >= RESULT_LIMIT ? `Showing the first ${RESULT_LIMIT} records: narrow the search to see others.`
          : `${records.length} record${records.length === 1 ? "" : "s"}`;
    for (const record of records) {
      const selected = String(record.id) === inputs.record.value;
      list.append(el("li", {},
        el("button", {
          type: "button", class: "record-item", "aria-pressed": selected ? "true" : "false",
          dataset: { id: record.id, testid: "record-item" },
          onclick: () => chooseRecord(record),
        },
        el("span", { class: "title" }, record.title),
        el("span", { class: "meta" }, [record.term, record.record_set, (record.topics || []).join(", "), `${record.groups} groups`].filter(Boolean).join(" · ")))));
    }
  }

  function chooseRecord(record) {
    const id = String(record.id);
    if (![...inputs.record.options].some((option) => option.value === id)) {
      inputs.record.append(el("option", { value: id }, record.title));
    }
    inputs.record.value = id;
    document.querySelectorAll(".record-item").forEach((button) => {
      button.setAttribute("aria-pressed", button.dataset.id === id ? "true" : "false");
    });
    state.pendingGroups = null; // a new record: every group takes part until unticked
    loadRecord(id);
  }

  async function loadRecord(id) {
    const ticket = ++state.requests.detail;
    const { ok, body } = await getJson(`/api/records/${encodeURIComponent(id)}/`);
    if (ticket !== state.requests.detail) return;
    if (!ok) {
      state.record = null;
      $("#stances-empty").textContent = body.error || "This record could not be loaded.";
      return;
    }
    state.record = body;
    renderRecord();
    renderStances();
    applyGroupMode();
    refreshPreview();
  }

  function renderRecord() {
    const record = state.record;
    $("#record-detail").hidden = false;
    $("#record-title").textContent = record.title;
    const real = record.real_total_score == null ? "" : ` · ${Math.round(record.real_total_score * 100)}% of all MEPs voted for the adopted text`;
    $("#record-meta").textContent = `${record.term} term · ${(record.topics || []).join(", ") || "no topic"}${real}`;
    $("#record-background").textContent = record.background || "(no background)";
    $("#record-resolution").textContent = record.resolution || "(not recorded)";
  }

  function voteBadge(position, choice, share) {
    return el("span", { class: "real-vote" },
      el("span", { class: `vote vote-${position}` }, position),
      el("span", { class: "score" }, ` ${choice}/9`),
      share == null ? null : el("span", { class: "muted small" }, ` ${Math.round(share * 100)}% of its MEPs for`));
  }

  function renderStances() {
    const body = clear($("#stances-body"));
    const pending = state.pendingGroups;
    for (const stance of state.record.stances) {
      const id = `group-${stance.group}`;
      const checked = pending ? pending.includes(stance.group) : true;
      const preview = stance.text.length > 110 ? `${stance.text.slice(0, 110).trim()}…` : stance.text;
      body.append(el("tr", { dataset: { group: stance.group } },
        el("td", { class: "check" },
          el("input", { type: "checkbox", name: "groups", value: stance.group, id, checked, dataset: { testid: id }, onchange: onGroupsChanged })),
        el("td", {},
          el("label", { for: id, class: "group-label" }, groupChip(stance.short_label, stance.colour), " ", el("span", { class: "muted small" }, stance.label))),
        el("td", { class: "num" }, stance.seats == null ? "–" : formatNumber(stance.seats)),
        el("td", {}, voteBadge(stance.real_position, stance.real_choice, stance.real_score)),
        el("td", { class: "stance-text" },
          el("details", {}, el("summary", {}, preview || "(empty stance)"), el("p", { class: "prose" }, stance.text)))));
    }
    state.pendingGroups = null;
    $("#stances").hidden = false;
    $("#stances-empty").hidden = true;
  }

  // ---- groups, seats, goal ---------------------------------------------------------------

  function mode() {
    return inputs.modeDivided.checked ? "divided" : "hand";
  }

  function applyGroupMode() {
    const divided = mode() === "divided";
    inputs.mostDivided.disabled = !divided;
    if (divided && !inputs.mostDivided.value) {
      const count = state.record ? state.record.stances.length : 4;
      inputs.mostDivided.value = String(Math.max(2, Math.min(4, count)));
    }
    document.querySelectorAll("#stances-body input[name=groups]").forEach((box) => { box.disabled = divided; });
    $("#stances").classList.toggle("divided", divided);
  }

  function checkedGroups() {
    return [...document.querySelectorAll("#stances-body input[name=groups]:checked")].map((box) => box.value);
  }

  function participants() {
    return mode() === "divided" ? state.previewGroups : checkedGroups();
  }

  function stanceOf(code) {
    return state.record ? state.record.stances.find((s) => s.group === code) : null;
  }

  function onGroupsChanged() {
    refreshPreview();
  }

  function renderCustomRows(groups) {
    const key = groups.join(",");
    if (key === state.customRowsFor) return;
    state.customRowsFor = key;
    const rows = clear($("#custom-seat-rows"));
    for (const code of groups) {
      const stance = stanceOf(code);
      const id = `custom-${code}`;
      rows.append(el("div", { class: "custom-seat" },
        el("label", { for: id }, groupChip(stance ? stance.short_label : code, stance ? stance.colour : "#888888")),
        el("input", {
          type: "number", id, name: `custom_seats.${code}`, min: "0", max: "100", step: "0.1", inputmode: "decimal",
          value: state.custom[code] == null ? "" : String(state.custom[code]),
          dataset: { code, testid: id },
          oninput: (event) => {
            const value = parseFloat(event.target.value);
            if (Number.isNaN(value)) delete state.custom[code];
            else state.custom[code] = value;
            updateCustomSum();
            refreshPreviewSoon();
          },
        }),
        el("span", { class: "unit" }, "%")));
    }
    if (groups.length) {
      rows.append(el("button", { type: "button", class: "link small", onclick: splitEqually }, "Split equally"));
    }
  }

  function splitEqually() {
    const groups = participants();
    if (!groups.length) return;
    const tenths = Math.floor(1000 / groups.length);
    groups.forEach((code, index) => {
      const rest = index === groups.length - 1 ? 1000 - tenths * (groups.length - 1) : tenths;
      state.custom[code] = rest / 10;
    });
    state.customRowsFor = "";
    renderCustomRows(groups);
    updateCustomSum();
    refreshPreview();
  }

  function customSum(groups) {
    return groups.reduce((sum, code) => sum + (Number(state.custom[code]) || 0), 0);
  }

  function updateCustomSum() {
    const groups = participants();
    const sum = customSum(groups);
    const exact = Math.abs(sum - 100) < 0.01;
    $("#custom-sum").textContent = formatNumber(sum, Number.isInteger(sum) ? 0 : 1);
    $("#custom-sum-line").classList.toggle("bad", !exact);
    $("#custom-sum-line").classList.toggle("good", exact);
    return exact;
  }

  function renderVetoOptions() {
    const select = inputs.veto;
    if (!select || select.tagName !== "SELECT") return;
    const current = select.value || state.vetoValue;
    const groups = participants();
    clear(select);
    select.append(el("option", { value: "" }, groups.length ? "Choose the veto group" : "Choose the groups first"));
    for (const code of groups) {
      const stance = stanceOf(code);
      select.append(el("option", { value: code }, stance ? `${stance.short_label} (${stance.label})` : code));
    }
    if (current && !groups.includes(current)) select.append(el("option", { value: current }, `${current} (not taking part)`));
    select.value = current || "";
  }

  // The veto group starts as a text input (plain HTML); a select of the participants replaces it.
  function vetoSelect() {
    const input = inputs.veto;
    if (!input) return;
    const select = el("select", { name: "veto_group", id: "id_veto_group", dataset: { testid: "veto-group" } });
    select.append(el("option", { value: state.vetoValue }, state.vetoValue || "Choose the groups first"));
    select.addEventListener("change", () => { state.vetoValue = select.value; refreshPower(); });
    input.replaceWith(select);
    inputs.veto = select;
  }

  function applyGoal() {
    const veto = inputs.goal.value === "veto_power";
    $("#veto-field").hidden = !veto;
    inputs.veto.disabled = !veto;
    document.querySelectorAll("#goal-help li").forEach((li) => { li.hidden = li.dataset.goal !== inputs.goal.value; });
  }

  function applyStrategy() {
    document.querySelectorAll("#strategy-params fieldset[data-strategy]").forEach((fieldset) => {
      fieldset.hidden = fieldset.dataset.strategy !== inputs.strategy.value;
    });
    document.querySelectorAll("#strategy-help li").forEach((li) => { li.hidden = li.dataset.strategy !== inputs.strategy.value; });
  }

  // The chosen strategy's model steps for these groups, parameters and judge, as the server
  // estimates them (GET /api/v1/strategies/<name>/estimate, from the strategy's own estimated_cost).
  async function refreshEstimate() {
    const ticket = ++state.requests.estimate;
    const note = $("#strategy-estimate");
    const groups = participants().length || (mode() === "divided" ? Number(inputs.mostDivided.value) || 0 : 0);
    if (groups < 2) {
      note.textContent = "Estimated model steps: choose the groups first.";
      return;
    }
    const strategy = inputs.strategy.value;
    const params = new URLSearchParams({ groups: String(groups), judge: inputs.judge.value });
    const fieldset = document.querySelector(`#strategy-params fieldset[data-strategy="${CSS.escape(strategy)}"]`);
    if (fieldset) {
      fieldset.querySelectorAll("[data-param]").forEach((input) => {
        if (input.value.trim()) params.append("param", `${input.dataset.param}=${input.value.trim()}`);
      });
    }
    const answer = await getJson(`/api/v1/strategies/${encodeURIComponent(strategy)}/estimate?${params}`);
    if (ticket !== state.requests.estimate) return;
    if (!answer.ok) {
      const errors = answer.body.errors || {};
      note.textContent = `Estimated model steps: none until the parameters are valid (${Object.entries(errors).map(([name, messages]) => `${name}: ${messages.join(" ")}`).join("; ")}).`;
      return;
    }
    note.textContent = `Estimated model steps: ${formatNumber(answer.body.steps)} for ${groups} groups` +
      ` (at most ${formatNumber(answer.body.completion_tokens)} completion tokens; cached steps cost nothing).`;
  }
  const refreshEstimateSoon = debounce(refreshEstimate, 250);

  function applyStructure() {
    const custom = inputs.structure.value === "custom";
    $("#custom-seats").hidden = !custom;
    if (custom) {
      renderCustomRows(participants());
      updateCustomSum();
    }
  }

  // ---- the hemicycle preview -------------------------------------------------------------

  function previewMessage(text, isError) {
    const status = $("#preview-status");
    status.textContent = text;
    status.classList.toggle("error-text", Boolean(isError));
  }

  function clearPreview(text, isError) {
    Hemicycle.purge($("#hemicycle-preview"));
    clear($("#preview-seats"));
    state.previewSeats = null;
    $("#preview-power").textContent = "";
    previewMessage(text, isError);
    refreshEstimate();
  }

  async function seatsFor(structure, groups, custom) {
    const params = new URLSearchParams({ structure, seed: inputs.seed.value || "0" });
    if (mode() === "divided") params.set("most_divided", inputs.mostDivided.value || "0");
    else params.set("groups", groups.join(","));
    if (custom) params.set("custom", JSON.stringify(custom));
    return getJson(`/api/records/${state.record.id}/seats?${params}`);
  }

  async function refreshPreview() {
    const ticket = ++state.requests.preview;
    if (!state.record) {
      clearPreview("The chamber appears once a record and its groups are chosen.");
      return;
    }
    let groups = checkedGroups();
    if (mode() === "hand" && groups.length < 2) {
      state.previewGroups = groups;
      renderVetoOptions();
      applyStructure();
      clearPreview("Pick at least two groups.", true);
      return;
    }
    const structure = inputs.structure.value;
    if (mode() === "divided") {
      // Learn which groups the server picks; custom shares can only be given once they are known.
      const first = await seatsFor(structure === "custom" ? "equal" : structure, [], null);
      if (ticket !== state.requests.preview) return;
      if (!first.ok) {
        clearPreview(first.body.error || "No preview for these choices.", true);
        return;
      }
      groups = first.body.groups;
      markChosen(groups);
      if (structure !== "custom") return showPreview(first.body);
    }
    state.previewGroups = groups;
    renderVetoOptions();
    if (structure === "custom") {
      renderCustomRows(groups);
      if (!updateCustomSum()) {
        const sum = customSum(groups);
        clearPreview(`Custom shares add up to ${formatNumber(sum, Number.isInteger(sum) ? 0 : 1)}%, not 100%.`, true);
        return;
      }
    }
    const custom = structure === "custom" ? Object.fromEntries(groups.map((code) => [code, Number(state.custom[code]) || 0])) : null;
    const answer = await seatsFor(structure, groups, custom);
    if (ticket !== state.requests.preview) return;
    if (!answer.ok) {
      clearPreview(answer.body.error || "No preview for these choices.", true);
      return;
    }
    showPreview(answer.body);
  }
  const refreshPreviewSoon = debounce(refreshPreview, 250);

  function markChosen(groups) {
    document.querySelectorAll("#stances-body tr").forEach((row) => {
      const chosen = groups.includes(row.dataset.group);
      row.classList.toggle("chosen", chosen);
      const box = row.querySelector("input[name=groups]");
      if (box) box.checked = chosen;
    });
  }

  function showPreview(answer) {
    state.previewGroups = answer.groups;
    renderVetoOptions();
    applyStructure();
    const groups = answer.groups.map((code) => {
      const stance = stanceOf(code);
      return { code, label: stance ? stance.short_label : code, colour: stance ? stance.colour : "#888888", share: answer.seats[code] };
    });
    Hemicycle.draw($("#hemicycle-preview"), { groups, seats: 100, legend: false }); // the table below is the legend
    const table = clear($("#preview-seats"));
    table.append(el("thead", {}, el("tr", {},
      el("th", {}, "Group"), el("th", { class: "num" }, "Seats"),
      el("th", { class: "num", title: "Shapley-Shubik power index" }, "Shapley-Shubik"),
      el("th", { class: "num", title: "Normalised Banzhaf power index" }, "Banzhaf"))));
    for (const group of groups) {
      table.append(el("tr", { dataset: { code: group.code } },
        el("td", {}, groupChip(group.label, group.colour)),
        el("td", { class: "num" }, `${formatNumber(group.share * 100, 1)}%`),
        el("td", { class: "num", dataset: { power: "shapley_shubik", testid: `power-ss-${group.code}` } }, "–"),
        el("td", { class: "num", dataset: { power: "banzhaf", testid: `power-bz-${group.code}` } }, "–")));
    }
    const structureLabel = inputs.structure.options[inputs.structure.selectedIndex].textContent;
    previewMessage(`${groups.length} groups · ${structureLabel}`);
    state.previewSeats = answer.seats;
    refreshPower();
    refreshEstimate();
  }

  // Voting power beside the seats: the coalitions that reach the goal's quota (GET /api/v1/power).
  async function refreshPower() {
    const ticket = ++state.requests.power;
    const note = $("#preview-power");
    document.querySelectorAll("#preview-seats [data-power]").forEach((cell) => { cell.textContent = "–"; });
    const seats = state.previewSeats;
    if (!seats || !Object.keys(seats).length) {
      note.textContent = "";
      return;
    }
    const goal = inputs.goal.value;
    const veto = inputs.veto && !inputs.veto.disabled ? inputs.veto.value : "";
    if (goal === "veto_power" && !veto) {
      note.textContent = "Choose the veto group to see each group's voting power.";
      return;
    }
    const params = new URLSearchParams({ goal });
    Object.entries(seats).forEach(([code, share]) => params.append("seats", `${code}:${share}`));
    if (veto) params.set("veto_group", veto);
    const answer = await getJson(`/api/v1/power?${params}`);
    if (ticket !== state.requests.power) return;
    if (!answer.ok) {
      note.textContent = answer.body.errors && answer.body.errors.goal
        ? "This goal scores welfare and ignores seats: no coalition wins, so no voting power."
        : "Voting power could not be computed for these seats.";
      return;
    }
    answer.body.groups.forEach((group) => {
      const row = document.querySelector(`#preview-seats tr[data-code="${CSS.escape(group.code)}"]`);
      if (!row) return;
      row.querySelector("[data-power=shapley_shubik]").textContent = `${formatNumber(group.shapley_shubik * 100, 1)}%`;
      row.querySelector("[data-power=banzhaf]").textContent = `${formatNumber(group.banzhaf * 100, 1)}%`;
    });
    note.textContent = `Voting power: a coalition wins with ${answer.body.quota.label}.`;
  }

  // ---- start --------------------------------------------------------------------------------

  // What the server sent back (a refused form, a saved scenario): the groups, custom seats in percent.
  function restoreState(initial) {
    if (Array.isArray(initial.groups) && initial.groups.length) state.pendingGroups = initial.groups;
    if (initial.custom_seats && typeof initial.custom_seats === "object") {
      state.custom = Object.fromEntries(Object.entries(initial.custom_seats).map(([code, value]) => [code, Number(value)]));
    }
    const divided = !state.pendingGroups && inputs.mostDivided.value;
    inputs.modeDivided.checked = Boolean(divided);
    inputs.modeHand.checked = !divided;
  }

  function init() {
    restoreState(readJson("builder-initial") || {});

    $("#record-fallback").hidden = true;
    $("#record-picker").hidden = false;
    vetoSelect();

    const reload = debounce(loadRecords, 250);
    filters.q.addEventListener("input", reload);
    for (const select of [filters.topic, filters.term, filters.set]) select.addEventListener("change", loadRecords);

    for (const radio of [inputs.modeHand, inputs.modeDivided]) {
      radio.addEventListener("change", () => { applyGroupMode(); refreshPreview(); });
    }
    inputs.mostDivided.addEventListener("input", () => {
      if (!inputs.modeDivided.checked) {
        inputs.modeDivided.checked = true;
        applyGroupMode();
      }
      refreshPreviewSoon();
    });
    inputs.structure.addEventListener("change", () => { applyStructure(); refreshPreview(); });
    inputs.seed.addEventListener("input", refreshPreviewSoon);
    inputs.goal.addEventListener("change", () => { applyGoal(); refreshPower(); });
    inputs.strategy.addEventListener("change", () => { applyStrategy(); refreshEstimate(); });
    inputs.judge.addEventListener("change", refreshEstimate);
    $("#strategy-params").addEventListener("input", refreshEstimateSoon);
    $("#strategy-params").addEventListener("change", refreshEstimateSoon);
    document.querySelectorAll("[data-model]").forEach((button) => {
      button.addEventListener("click", () => { inputs.model.value = button.dataset.model; inputs.model.focus(); });
    });

    form.addEventListener("submit", (event) => {
      const saving = event.submitter && event.submitter.value === "save";
      if (saving && !inputs.name.value.trim()) {
        event.preventDefault();
        $("#save-hint").textContent = "Give the scenario a name to save it.";
        $("#save-hint").classList.add("error-text");
        inputs.name.focus();
      }
    });

    applyGroupMode();
    applyGoal();
    applyStrategy();
    applyStructure();
    refreshEstimate();
    loadRecords();
    if (inputs.record.value) loadRecord(inputs.record.value);
  }

  init();
}
