import { describe, expect, it } from '@jest/globals';

import { FailureFloor } from '../../src/accounts/failure-floor.ts';

describe('the time a failed sign-in is answered after', () => {
  it('is the configured floor while failures are quicker', () => {
    const floor = new FailureFloor({ baseMs: 300 });
    for (let i = 0; i < 50; i += 1) floor.record(120 + i);
    expect(floor.target()).toBe(300);
  });

  it('rises to the 95th percentile of recent failures once the database makes them slow', () => {
    const floor = new FailureFloor({ baseMs: 300, window: 100 });
    // 90 quick wrong passwords and 10 slow first attempts on unknown names.
    for (let i = 0; i < 90; i += 1) floor.record(400);
    for (let i = 0; i < 10; i += 1) floor.record(1300);
    expect(floor.target()).toBe(1300);
  });

  it('follows the recent failures only, and is capped', () => {
    const floor = new FailureFloor({ baseMs: 300, window: 10, capMs: 5000 });
    for (let i = 0; i < 10; i += 1) floor.record(60_000);
    expect(floor.target()).toBe(5000);
    for (let i = 0; i < 10; i += 1) floor.record(100);
    expect(floor.target()).toBe(300);
  });

  it('holds nothing when turned off', () => {
    const floor = new FailureFloor({ baseMs: 0 });
    floor.record(5000);
    expect(floor.target()).toBe(0);
  });
});
