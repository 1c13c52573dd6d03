import { describe, expect, it } from "vitest";
import { age, amount, plainDecimal, shortId, signOf, utc } from "../src/format";

describe("plainDecimal", () => {
  it.each([
    ["0.000179148183377090", "0.00017914818337709"],
    ["1E-7", "0.0000001"],
    ["-2.5E+3", "-2500"],
    ["0E-8", "0"],
    ["-0.000", "0"],
    ["12.3400", "12.34"],
    ["0.1", "0.1"],
    ["123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"],
    ["007", "7"],
  ])("shows %s as %s, digit for digit", (given, shown) => {
    expect(plainDecimal(given)).toBe(shown);
  });

  it("keeps more digits than a float holds", () => {
    const text = "0.10000000000000000000000000001";
    expect(plainDecimal(text)).toBe(text);
    expect(String(Number(text))).not.toBe(text);
  });

  it("leaves what is not a number as it was", () => {
    expect(plainDecimal("NaN")).toBe("NaN");
    expect(plainDecimal("")).toBe("");
  });
});

describe("amount and sign", () => {
  it("signs gains, writes losses with a minus sign, and adds the currency", () => {
    expect(amount("0.0012", "BTC", true)).toBe("+0.0012 BTC");
    expect(amount("-0.0012", "BTC", true)).toBe("−0.0012 BTC");
    expect(amount("0E-10", "BTC", true)).toBe("0 BTC");
    expect(amount(null)).toBe("—");
  });

  it("reads the sign from the digits", () => {
    expect(signOf("-1E-20")).toBe(-1);
    expect(signOf("0.000")).toBe(0);
    expect(signOf("3")).toBe(1);
    expect(signOf(undefined)).toBe(0);
  });
});

describe("times", () => {
  it("writes UTC minutes and human ages", () => {
    expect(utc(1515560100000)).toBe("2018-01-10 04:55 UTC");
    expect(age(45_000)).toBe("45 s");
    expect(age(12 * 60_000)).toBe("12 min");
    expect(age(185 * 60_000)).toBe("3 h 5 min");
    expect(age(52 * 3_600_000)).toBe("2 d 4 h");
    expect(age(null)).toBe("—");
  });

  it("shortens long ids and keeps short ones", () => {
    expect(shortId("0123456789abcdef0123456789abcdef")).toBe("012345…abcdef");
    expect(shortId("abc")).toBe("abc");
  });
});
