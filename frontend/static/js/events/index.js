/* The event-renderer registry: event type -> render(message, t). The transcript (transcript.js)
 * calls the renderer of each stored event, in sequence order, once; a type without one shows as a
 * small "(type)" line.
 *
 * To add an event type: write `render(message, t)` in the module of its strategy (events/<strategy>.js,
 * exporting `renderers = {type: render}`) and, for a new module, add it to the list below. That is
 * all: the run page, the classroom and a replay all go through here.
 *
 * A renderer gets the event {seq, type, at, data} and `t`, the transcript it draws into:
 *   t.append(node)                         add to the transcript (#transcript)
 *   t.eventNode(message, class, ...kids)   the <article> of an event (data-seq, data-type, data-testid)
 *   t.textNode(message, text)              a paragraph of model or student text (textContent only;
 *                                          the classroom reveals it word by word)
 *   t.chipFor(code) · t.groupLabel(code)   a group's coloured chip / short label ("Mediator" for "mediator")
 *   t.byline(data) · t.usageText(usage)    who spoke (classroom) / tokens and time of the call
 *   t.state                                 what the page knows (phase, drafts, votes, tally, outcome, status)
 *   t.setPhase(phase, round) · t.setStatus(status) · t.finish() · t.scheduleCharts()
 *   t.renderCurrentDraft() · t.renderOutcome() · t.renderTallySummary() · t.outcomeVerdict(outcome)
 *   t.page · t.groups · t.rounds · t.debating
 * and builds nodes with el() from dom.js. Model text is untrusted: it goes in as text (el's children,
 * textContent), never as HTML. */
import { renderers as run } from "./run.js";
import { renderers as debate } from "./debate.js";
import { renderers as classroom } from "./classroom.js";
import { renderers as mediator } from "./mediator.js";
import { renderers as forecast } from "./forecast.js";
import { renderers as advisor } from "./advisor.js";
import { renderers as amulet } from "./amulet.js";
import { renderers as negotiation } from "./negotiation.js";

export const RENDERERS = Object.freeze({ ...run, ...debate, ...classroom, ...mediator, ...forecast, ...advisor, ...amulet, ...negotiation });
