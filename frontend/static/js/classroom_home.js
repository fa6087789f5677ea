/* The open-session form: the line under the scenario says which model plays its agents and how
 * long a turn takes on it (the server wrote one line per scenario; show the chosen one). */
const select = document.getElementById("id_scenario");
if (select) {
  const show = () => {
    document.querySelectorAll("[data-testid=agent-models] li").forEach((item) => {
      item.hidden = item.dataset.scenario !== select.value;
    });
  };
  select.addEventListener("change", show);
  show();
}
