import { describe, expect, it } from "vitest";
import type { Message } from "../api/types";
import { checkImage, imageBlock, imagesSize, MAX_IMAGE_BYTES, readImage, simplify, sniffImageType, tidyContent } from "./blocks";

const bytes = (text: string, size = text.length) => {
  const out = new Uint8Array(size);
  [...text].forEach((c, i) => (out[i] = c.charCodeAt(0)));
  return out;
};
const PNG = "\x89PNG\r\n\x1a\n";

describe("image checks", () => {
  it("knows the four image types by their first bytes, whatever the file claims", () => {
    expect(sniffImageType(bytes(PNG + "rest"))).toBe("image/png");
    expect(sniffImageType(bytes("\xff\xd8\xff\xe0"))).toBe("image/jpeg");
    expect(sniffImageType(bytes("GIF89a..."))).toBe("image/gif");
    expect(sniffImageType(bytes("RIFF\0\0\0\0WEBPVP8 "))).toBe("image/webp");
    expect(sniffImageType(bytes("RIFF\0\0\0\0WAVEfmt "))).toBeNull(); // a RIFF that is no WebP
    expect(sniffImageType(bytes("%PDF-1.7"))).toBeNull();
    expect(sniffImageType(new Uint8Array())).toBeNull();
  });

  it("says what is wrong: not an image of the four, or larger than 1 MiB decoded", () => {
    expect(checkImage("notes.txt", bytes("hello"))).toEqual({ ok: false, error: "notes.txt is not a PNG, JPEG, GIF or WebP image." });
    expect(checkImage("big.png", bytes(PNG, MAX_IMAGE_BYTES + 1))).toEqual({
      ok: false,
      error: "big.png is 1.0 MiB; an image can be at most 1 MiB.",
    });
    expect(checkImage("ok.png", bytes(PNG, MAX_IMAGE_BYTES))).toEqual({ ok: true, mediaType: "image/png" });
  });

  it("reads a file into a base64 block the server accepts, and refuses one past the request's room", async () => {
    const read = await readImage(new File([bytes(PNG + "xy")], "dot.png", { type: "image/png" }), []);
    expect(read).toEqual({ ok: true, block: { type: "image", source: { type: "base64", media_type: "image/png", data: btoa(PNG + "xy") } } });
    // Declared as a PNG, but it is text: the bytes decide.
    const fake = await readImage(new File(["just text"], "fake.png", { type: "image/png" }), []);
    expect(fake).toEqual({ ok: false, error: "fake.png is not a PNG, JPEG, GIF or WebP image." });
    const huge = await readImage(new File([bytes(PNG, 2 * MAX_IMAGE_BYTES)], "huge.png", { type: "image/png" }), []);
    expect(huge).toEqual({ ok: false, error: "huge.png is 2.0 MiB; an image can be at most 1 MiB." });

    const big = imageBlock("image/png", bytes(PNG, 1_000_000));
    const two: Message[] = [{ role: "user", content: [big, big] }];
    expect(imagesSize(two)).toBe(2 * big.source.data.length);
    const third = await readImage(new File([bytes(PNG, 10_000)], "third.png"), [{ role: "user", content: [big] }]);
    expect(third.ok).toBe(true);
    const over = await readImage(new File([bytes(PNG, 500_000)], "over.png"), [{ role: "user", content: [big] }]);
    expect(over).toMatchObject({ ok: false, error: expect.stringContaining("2 MiB a request may carry") });
  });
});

describe("content as sent", () => {
  const image = imageBlock("image/png", bytes(PNG));
  it("drops empty text beside other blocks, and keeps everything else as it is", () => {
    expect(tidyContent("")).toBe("");
    expect(tidyContent([{ type: "text", text: " " }, image])).toEqual([image]);
    const both = [{ type: "text" as const, text: "Describe it" }, image];
    expect(tidyContent(both)).toBe(both);
    const onlyEmpty = [{ type: "text" as const, text: "" }];
    expect(tidyContent(onlyEmpty)).toBe(onlyEmpty); // the server says what is wrong with it
  });

  it("simplifies blocks back to plain text when only one text is left", () => {
    expect(simplify([])).toBe("");
    expect(simplify([{ type: "text", text: "hi" }])).toBe("hi");
    expect(simplify([image])).toEqual([image]);
  });
});
