/* The upload page while an import runs: poll its progress every second, then show the report. */
const panel = document.getElementById("import-progress");
if (panel) {
  const bar = document.getElementById("import-bar");
  const label = document.getElementById("import-label");

  async function poll() {
    try {
      const response = await fetch(panel.dataset.progressUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const state = await response.json();
        bar.value = state.progress;
        label.textContent = `${Math.round(state.progress * 100)}% · ${state.label}`;
        if (state.finished) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      label.textContent = "connection lost, retrying…";
    }
    setTimeout(poll, 1000);
  }
  poll();
}
