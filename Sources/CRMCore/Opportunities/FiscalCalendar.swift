/// How long a forecast period is.
public enum PeriodKind: String, Sendable, Hashable, CaseIterable {
  case month
  case quarter
  case year
}

/// One forecast period: a calendar month, or a quarter or year of the tenant's fiscal calendar.
public struct ForecastPeriod: Sendable, Hashable {
  public var kind: PeriodKind
  /// The first day.
  public var start: CalendarDate
  /// The last day (included).
  public var end: CalendarDate
  /// "2027-Q1", "2027", "2027-03".
  public var name: String

  /// Makes a period; ``FiscalCalendar`` makes the real ones.
  public init(kind: PeriodKind, start: CalendarDate, end: CalendarDate, name: String) {
    self.kind = kind
    self.start = start
    self.end = end
    self.name = name
  }

  /// Whether `date` falls in the period.
  public func contains(_ date: CalendarDate) -> Bool { start <= date && date <= end }
}

/// The tenant's fiscal year: which month it starts in. A fiscal year is named by the calendar year
/// it ends in (a year starting in April 2026 is fiscal 2027), so with a January start fiscal and
/// calendar years are the same.
public struct FiscalCalendar: Sendable, Hashable {
  /// 1 (January) to 12.
  public var startMonth: Int

  /// A calendar; `startMonth` outside 1–12 is taken as January.
  public init(startMonth: Int = 1) {
    self.startMonth = (1...12).contains(startMonth) ? startMonth : 1
  }

  /// The fiscal year `date` falls in.
  public func fiscalYear(of date: CalendarDate) -> Int {
    startMonth == 1 || date.month < startMonth ? date.year : date.year + 1
  }

  /// The first day of fiscal year `year`.
  func firstDay(ofFiscalYear year: Int) -> CalendarDate? {
    startMonth == 1 ? CalendarDate(year: year, month: 1, day: 1) : CalendarDate(year: year - 1, month: startMonth, day: 1)
  }

  /// The period of `kind` holding `date`.
  public func period(_ kind: PeriodKind, containing date: CalendarDate) -> ForecastPeriod? {
    switch kind {
    case .month:
      return Self.month(date.year, date.month)
    case .year:
      return year(fiscalYear(of: date))
    case .quarter:
      let monthsIn = (date.month - startMonth + 12) % 12
      return quarter(fiscalYear(of: date), monthsIn / 3 + 1)
    }
  }

  /// A period from its name: "2027" or "FY2027" (a fiscal year), "2027-Q1" or "FY2027-Q1" (a fiscal
  /// quarter), "2027-03" (a calendar month); `nil` for anything else.
  public func period(named text: String) -> ForecastPeriod? {
    var name = Substring(text.trimmingWhitespace().uppercased())
    if name.hasPrefix("FY") { name = name.dropFirst(2) }
    let parts = name.split(separator: "-", omittingEmptySubsequences: false)
    guard let first = parts.first, first.count == 4, first.allSatisfy(\.isASCII), let year = Int(first) else { return nil }
    switch parts.count {
    case 1:
      return self.year(year)
    case 2 where parts[1].count == 2 && parts[1].hasPrefix("Q"):
      guard let number = Int(parts[1].dropFirst()), (1...4).contains(number) else { return nil }
      return quarter(year, number)
    case 2 where parts[1].count == 2 && !text.uppercased().hasPrefix("FY"):
      guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let month = Int(parts[1]), (1...12).contains(month) else {
        return nil
      }
      return Self.month(year, month)
    default:
      return nil
    }
  }

  /// Fiscal year `year`.
  func year(_ year: Int) -> ForecastPeriod? {
    guard let start = firstDay(ofFiscalYear: year), let next = Self.adding(months: 12, to: start) else { return nil }
    return ForecastPeriod(kind: .year, start: start, end: next.adding(days: -1), name: Self.pad(year, 4))
  }

  /// Quarter `number` (1–4) of fiscal year `year`.
  func quarter(_ year: Int, _ number: Int) -> ForecastPeriod? {
    guard let yearStart = firstDay(ofFiscalYear: year), let start = Self.adding(months: (number - 1) * 3, to: yearStart),
      let next = Self.adding(months: 3, to: start)
    else { return nil }
    return ForecastPeriod(kind: .quarter, start: start, end: next.adding(days: -1), name: "\(Self.pad(year, 4))-Q\(number)")
  }

  /// Calendar month `month` of `year`.
  static func month(_ year: Int, _ month: Int) -> ForecastPeriod? {
    guard let start = CalendarDate(year: year, month: month, day: 1), let next = adding(months: 1, to: start) else { return nil }
    return ForecastPeriod(kind: .month, start: start, end: next.adding(days: -1), name: "\(pad(year, 4))-\(pad(month, 2))")
  }

  /// The first of the month `months` after the first of `date`'s month.
  static func adding(months: Int, to date: CalendarDate) -> CalendarDate? {
    let index = date.year * 12 + (date.month - 1) + months
    return CalendarDate(year: index / 12, month: index % 12 + 1, day: 1)
  }

  /// The periods of `kind` that lie inside `period` (its months, or the quarters of a year).
  public func periods(_ kind: PeriodKind, inside period: ForecastPeriod) -> [ForecastPeriod] {
    var periods: [ForecastPeriod] = []
    var day = period.start
    while day <= period.end, let next = self.period(kind, containing: day) {
      if next.start >= period.start && next.end <= period.end { periods.append(next) }
      day = next.end.adding(days: 1)
    }
    return periods
  }

  static func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
  }
}

extension CalendarDate {
  /// The Monday of this date's ISO week.
  public var weekStart: CalendarDate { adding(days: 1 - isoWeekday) }
}
