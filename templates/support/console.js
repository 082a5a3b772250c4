// Times arrive in UTC (readable without script); show them in the reader's own time zone,
// with the zone named, as "2026-11-28 14:05 CET".
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const parts = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });
  for (const node of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    const p = Object.fromEntries(parts.formatToParts(moment).map((x) => [x.type, x.value]));
    node.title = node.textContent;
    node.textContent = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
  }
});
