/**
 * The password policy, the same as the terminal client's (the server never sees the
 * password, so only a client can enforce it), and a rough strength estimate for feedback.
 *
 * @module
 */

export const MIN_LENGTH = 10;

/** The rules in a sentence, shown before anything is typed (the terminal client states the same). */
export const PASSWORD_RULES = "At least 10 characters; not a common password; not containing your username.";

/** @type {Promise<Set<string>> | null} */
let commonPasswords = null;

/** @returns {Promise<Set<string>>} */
function loadCommonPasswords() {
  commonPasswords ??= fetch("/static/common-passwords.txt")
    .then((response) => (response.ok ? response.text() : ""))
    .then(
      (text) =>
        new Set(
          text
            .split("\n")
            .map((line) => line.trim())
            .filter((line) => line && !line.startsWith("#")),
        ),
    );
  return commonPasswords;
}

/**
 * The reason a new password is refused, or null if it is acceptable.
 *
 * @param {string} password
 * @param {string} username
 * @returns {Promise<string | null>}
 */
export async function passwordProblem(password, username) {
  const normalised = password.normalize("NFKC");
  if ([...normalised].length < MIN_LENGTH) return `Use at least ${MIN_LENGTH} characters.`;
  if (normalised.includes("\0")) return "The password must not contain NUL characters.";
  const lowered = normalised.toLowerCase();
  if ((await loadCommonPasswords()).has(lowered)) {
    return "That is one of the most common passwords. Choose another.";
  }
  if (username && lowered.includes(username.toLowerCase())) return "The password must not contain your username.";
  if (new Set(lowered).size < 4) return "The password is too repetitive.";
  return null;
}

/**
 * A rough guess at strength from length and character variety: a hint for people,
 * not a guarantee (a long phrase of common words scores higher than it deserves).
 *
 * @param {string} password
 * @returns {{score: 0 | 1 | 2 | 3, label: string}}
 */
export function strength(password) {
  const characters = [...password];
  let pool = 0;
  if (/[a-z]/.test(password)) pool += 26;
  if (/[A-Z]/.test(password)) pool += 26;
  if (/[0-9]/.test(password)) pool += 10;
  if (/[^a-zA-Z0-9]/.test(password)) pool += 33;
  const bits = characters.length * Math.log2(Math.max(pool, 1)) * (new Set(characters).size / Math.max(characters.length, 1));
  if (characters.length < MIN_LENGTH || bits < 40) return { score: 0, label: "Too weak" };
  if (bits < 60) return { score: 1, label: "Fair" };
  if (bits < 80) return { score: 2, label: "Good" };
  return { score: 3, label: "Strong" };
}
