/* Renderers of the classroom's own events (docs/classroom.md). */
export const renderers = {
  seat_joined(message, t) {
    const { name, group } = message.data;
    t.append(t.eventNode(message, "minor joined", name, group ? " takes a seat with " : " watches", group ? t.chipFor(group) : null));
  },
};
