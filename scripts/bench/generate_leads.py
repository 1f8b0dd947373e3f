#!/usr/bin/env python3
"""Writes a CSV of N realistic leads for the import benchmark, and a candidates file for FindDuplicates.

  generate_leads.py ROWS OUT.csv CANDIDATES.csv

Names, companies and emails are drawn from common real-world parts (so trigram lookups meet common
words, as they would in production); 5% of rows repeat an earlier person's email (differently cased,
sometimes with another spelling of the name), 1% have an invalid email. Deterministic (seeded).
"""
import csv
import random
import sys

FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph
Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark Ashley Wei Fang Li Na
Jun Min Hui Ying Lei Jing Hiroshi Yuki Haruto Sakura Ahmed Fatima Mohammed Aisha Omar Layla Carlos Sofia Javier Lucia
Diego Valentina Luca Giulia Marco Chiara Hans Anna Lukas Lena Pierre Camille Louis Chloe Olga Ivan Dmitri Natalia Priya
Raj Arjun Ananya Vikram Deepa Kwame Amara Chidi Zanele Sipho Lars Ingrid Erik Astrid Mateus Beatriz Joao Ana""".split()
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson
Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Wang Li Zhang Liu
Chen Yang Huang Zhao Wu Zhou Sato Suzuki Takahashi Tanaka Watanabe Khan Ali Hassan Hussein Rossi Russo Ferrari Esposito
Muller Schmidt Schneider Fischer Weber Martin Bernard Dubois Ivanov Petrov Sidorov Patel Sharma Singh Kumar Gupta Okafor
Mensah Nkosi Dlamini Andersson Johansson Larsen Silva Santos Oliveira Pereira Costa Kowalski Nowak Novak Horvath""".split()
WORDS = """Global Pacific Atlantic Summit Pioneer Vertex Apex Horizon Quantum Nova Stellar Blue Green Red Silver Golden
Northern Southern Eastern Western United First Prime Bright Clear Smart Rapid Secure Digital Cloud Data Net Tech Soft
Logic Systems Solutions Dynamics Analytics Networks Labs Works Industries Partners Capital Ventures Health Medical Bio
Energy Power Solar Logistics Freight Retail Foods Media Design Consulting Engineering Robotics Materials Textiles""".split()
SUFFIX = ["Inc.", "LLC", "Ltd", "GmbH", "Corp.", "Co.", "S.A.", "B.V.", "Pty Ltd", "有限公司", "AG", "PLC", ""]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "qq.com", "163.com", "proton.me"]
TITLES = ["CEO", "CTO", "CFO", "VP Sales", "Head of Procurement", "Engineer", "Buyer", "Operations Manager", "Founder", "Director"]
COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "CN", "JP", "IN", "BR", "CA", "AU"]


def main():
    rows, out, candidates_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rnd = random.Random(20261124)
    people = []
    with open(out, "w", newline="", encoding="utf-8") as f, open(candidates_path, "w", newline="", encoding="utf-8") as c:
        writer = csv.writer(f)
        writer.writerow(["First Name", "Last Name", "Email", "Company", "Phone", "Title", "Country"])
        candidates = csv.writer(c, lineterminator="\n")
        for i in range(rows):
            if people and rnd.random() < 0.05:
                first, last, email, company = rnd.choice(people)
                email = email.upper() if rnd.random() < 0.5 else email
                if rnd.random() < 0.3:
                    first = first[0] + "."
            else:
                first, last = rnd.choice(FIRST), rnd.choice(LAST)
                company = " ".join(rnd.sample(WORDS, rnd.choice([1, 2, 2, 3]))) + (" " + rnd.choice(SUFFIX)).rstrip()
                if rnd.random() < 0.6:
                    host = company.split()[0].lower() + company.split()[-1].lower().strip(".") + ".com"
                else:
                    host = rnd.choice(DOMAINS)
                email = f"{first.lower()}.{last.lower()}{i}@{host}"
                if len(people) < 200000:
                    people.append((first, last, email, company))
            if rnd.random() < 0.01:
                email = email.replace("@", " at ")
            phone = f"+1 ({rnd.randint(201, 989)}) {rnd.randint(200, 999)}-{rnd.randint(0, 9999):04d}"
            writer.writerow([first, last, email, company, phone, rnd.choice(TITLES), rnd.choice(COUNTRIES)])
            if i % 100 == 0:
                # Half the candidates are people in the file, half look like them but are new.
                if rnd.random() < 0.5 and people:
                    p = rnd.choice(people)
                    candidates.writerow([p[0], p[1], p[2].lower(), p[3]])
                else:
                    f2, l2 = rnd.choice(FIRST), rnd.choice(LAST)
                    candidates.writerow([f2, l2, f"{f2.lower()}.{l2.lower()}@newcomer.example", rnd.choice(WORDS) + " " + rnd.choice(WORDS)])


if __name__ == "__main__":
    main()
