// @hearsay/clock: time as an input — the Clock interface every runtime takes,
// the real clock (and its variant for background loops), and sleep.

export type { Clock } from './clock.ts';
export { backgroundClock, realClock, sleep, TIMER_DELAY_MS_MAX } from './clock.ts';
