// Answers that came too late: a view that reads again while an earlier read
// is still under way must keep only the answer of the latest one, whatever
// order they arrive in. A Latest counts the reads of one kind:
//
//   const reads = new Latest();
//   const current = reads.start();
//   const body = await api.get(url);
//   if (!current()) return; // a later read started meanwhile
//
// A read of several steps asks current() after each await.

export class Latest {
  #n = 0;

  // start begins a read and returns its check: true until another read
  // starts or drop is called.
  start() {
    const n = ++this.#n;
    return () => n === this.#n;
  }

  // drop makes the reads under way stale without starting one (what they
  // would show no longer applies).
  drop() {
    this.#n++;
  }
}
