/* What the engine calls things, as the server sent it (base.html's `hemicycle-labels` block, from
 * deliberation/engine/labels.py): goals, phases and a debate's order of them, and the vote position
 * of each 0..9 support score.
 * Pages never keep their own copies. */
import { readJson } from "./dom.js";

const LABELS = readJson("hemicycle-labels", { goals: {}, phases: {}, debate_phases: [], positions: [] });

export const goalLabel = (key) => LABELS.goals[key] || key;
export const phaseLabel = (key) => LABELS.phases[key] || key;
// A debate's phases in order (strategies/parliament.py PHASES).
export const debatePhases = () => [...LABELS.debate_phases];
// "for" | "abstain" | "against", as engine/goals.py's vote_position has it.
export const votePosition = (score) => LABELS.positions[Math.max(0, Math.min(LABELS.positions.length - 1, Math.round(score)))];
