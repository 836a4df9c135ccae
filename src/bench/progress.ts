/** The bench's progress bar on stderr: steps done out of planned, and what is running now. */
export class Progress {
  private done = 0;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WritableStream = process.stderr,
  ) {}

  /** One step finished. */
  step(label: string): void {
    this.done++;
    this.show(label);
  }

  /** Shows `label` beside the bar without counting a step (a set-up under way, say). */
  show(label: string): void {
    const width = 30;
    const filled = Math.round((this.done / Math.max(1, this.total)) * width);
    this.out.write(
      `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total} ${label.padEnd(48).slice(0, 48)}`,
    );
  }

  /** Ends the bar's line, so what is written next starts on its own. */
  end(): void {
    this.out.write('\n');
  }
}
