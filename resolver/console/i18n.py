"""The console's and block page's words: Vietnamese first, English second."""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("vi", "en")
TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Lá chắn — bảng điều khiển", "lachan — console"),
    "login": ("Đăng nhập", "Log in"),
    "user": ("Tên người dùng", "User name"),
    "password": ("Mật khẩu", "Password"),
    "logout": ("Đăng xuất", "Log out"),
    "bad_login": ("Sai tên hoặc mật khẩu", "Wrong user name or password"),
    "too_many": ("Quá nhiều lần thử, hãy đợi một phút", "Too many attempts; wait a minute"),
    "not_from_here": ("Không được đăng nhập từ mạng này", "Login is not allowed from this network"),
    "status": ("Trạng thái", "Status"),
    "protection_on": ("Bảo vệ đang bật", "Protection is on"),
    "protection_off": ("Bảo vệ chưa chạy", "Protection is not running"),
    "profiles": ("Hồ sơ lọc đang áp dụng", "Profiles in force"),
    "lists": ("Danh sách chặn", "Blocklists"),
    "index_age": ("Tuổi bản danh sách", "Age of the compiled lists"),
    "upstreams": ("Máy chủ phía trên", "Upstreams"),
    "encrypted": ("DNS mã hóa (DoT, DoH)", "Encrypted DNS (DoT, DoH)"),
    "no_encrypted": ("Không bật", "Not set up"),
    "canary": ("Kiểm tra status.lachan.arpa", "Canary status.lachan.arpa"),
    "no_answer": ("không trả lời", "no answer"),
    "ledger": ("Bản ghi sổ kiểm toán gần nhất", "Last audit ledger record"),
    "no_ledger": ("Chưa có sổ kiểm toán", "No audit ledger"),
    "ack_unknown": (
        "Chưa biết Sở đã nhận chưa: chưa gửi lên lần nào (lachan report push)",
        "Province acknowledgement not known: never pushed (lachan report push)",
    ),
    "ack_all": (
        "Sở đã xác nhận bản ghi #{seq} (lần gửi lúc {at})",
        "The province acknowledged record #{seq} (pushed {at})",
    ),
    "ack_behind": (
        "Sở đã xác nhận đến bản ghi #{seq} (lần gửi lúc {at}); còn {behind} bản ghi chưa gửi",
        "The province acknowledged up to record #{seq} (pushed {at}); {behind} not sent yet",
    ),
    "activity": ("Hôm nay và tuần này", "Today and this week"),
    "today": ("Hôm nay", "Today"),
    "week": ("Tuần này", "This week"),
    "since_start": ("Từ khi khởi động", "Since the server started"),
    "queries": ("Truy vấn", "Queries"),
    "blocks": ("Bị chặn", "Blocked"),
    "category": ("Nhóm", "Category"),
    "hour": ("Giờ", "Hour"),
    "when": ("Lúc", "When"),
    "allows_week": (
        "Số lần mở tạm thời tuần này, theo nhóm",
        "Temporary allows this week, per category",
    ),
    "why": ("Vì sao bị chặn?", "Why is this blocked?"),
    "name": ("Tên miền", "Domain name"),
    "profile": ("Hồ sơ", "Profile"),
    "look_up": ("Tra cứu", "Look up"),
    "verdict_blocked": (
        "{name} đang bị chặn với hồ sơ {profile}: nhóm «{category}».",
        "{name} is blocked for profile {profile}: category “{category}”.",
    ),
    "verdict_allowed": (
        "{name} không bị chặn với hồ sơ {profile}.",
        "{name} is not blocked for profile {profile}.",
    ),
    "verdict_rewritten": (
        "{name} được chuyển sang chế độ an toàn ({target}) với hồ sơ {profile}.",
        "{name} is answered with its safe version ({target}) for profile {profile}.",
    ),
    "explain_detail": ("Chi tiết kỹ thuật (lachan explain)", "Technical detail (lachan explain)"),
    "allows": ("Mở tạm thời", "Temporary allows"),
    "duration": ("Thời gian", "Duration"),
    "reason": ("Lý do", "Reason"),
    "allow": ("Mở", "Allow"),
    "until": ("Đến", "Until"),
    "by": ("Người mở", "By"),
    "revoke": ("Thu hồi", "Revoke"),
    "no_allows": ("Không có trang nào đang mở tạm thời", "No temporary allow in force"),
    "done": ("Đã lưu", "Saved"),
    "reviews": ("Yêu cầu xem xét", "Review requests"),
    "no_reviews": ("Không có yêu cầu nào", "No request waiting"),
    "accept_temp": ("Mở tạm thời", "Allow for a while"),
    "accept_perm": ("Mở vĩnh viễn", "Allow for good"),
    "dismiss": ("Bỏ qua", "Dismiss"),
    "admin_only": ("Chỉ quản trị viên được mở vĩnh viễn", "Only an admin may allow for good"),
    "refused": ("Không thực hiện được", "Refused"),
    "blocked_title": ("Trang này đã bị chặn", "This site is blocked"),
    "blocked_here": ("Trang {host} bị chặn trên mạng này.", "{host} is blocked on this network."),
    "blocked_why": (
        "Nhóm: {category}. Hồ sơ lọc: {profile}.",
        "Category: {category}. Filtering profile: {profile}.",
    ),
    "ask_review": (
        "Nếu bạn cần trang này cho việc học, hãy gửi yêu cầu để thầy cô xem xét. "
        "Yêu cầu không ghi tên hay thiết bị của bạn.",
        "If you need this site for learning, ask for a review. The request does not "
        "record who you are or your device.",
    ),
    "send_review": ("Gửi yêu cầu xem xét", "Ask for a review"),
    "review_sent": ("Đã gửi yêu cầu. Thầy cô sẽ xem xét.", "Request sent; staff will look at it."),
    "hotline": (
        "Cần giúp đỡ? Gọi Tổng đài quốc gia bảo vệ trẻ em 111 (miễn phí, 24/7).",
        "Need help? Call 111, the national child protection hotline (free, 24/7).",
    ),
    "bad_request": ("Yêu cầu không hợp lệ", "Bad request"),
    "unknown": ("không rõ", "unknown"),
}


def lang_of(query: str | None, cookie: str | None) -> str:
    """``?lang=`` first, then the cookie, else Vietnamese."""
    for choice in (query, cookie):
        if choice in LANGS:
            return choice
    return "vi"


def translator(lang: str) -> Callable[..., str]:
    index = LANGS.index(lang)

    def t(key: str, **values: object) -> str:
        text = TEXTS[key][index]
        return text.format(**values) if values else text

    return t
