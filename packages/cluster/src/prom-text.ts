/**
 * One metric family in the Prometheus text format: HELP and TYPE lines, then
 * one sample per entry of `samples` — `[labels, value]`, labels as written
 * between the braces (`kind="write",outcome="ok"`), '' for none.
 */
export function metricFamily(
  name: string, type: 'counter' | 'gauge', help: string, samples: readonly (readonly [labels: string, value: number])[],
): string[] {
  return [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} ${type}`,
    ...samples.map(([labels, value]) => (labels === '' ? `${name} ${value}` : `${name}{${labels}} ${value}`)),
  ];
}
